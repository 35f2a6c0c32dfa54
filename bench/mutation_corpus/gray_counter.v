// 4-bit Gray-code counter, synchronous reset i_rst, with a bin2gray helper of the same name as
// the one in fifo_dual_clock.v (each reference is compiled on its own)
module gray_counter (input i_clk, input i_rst, input i_en, output [3:0] o_gray);
  reg [3:0] bin;
  always @(posedge i_clk)
    if (i_rst) bin <= 4'd0;
    else if (i_en) bin <= bin + 4'd1;
  bin2gray #(4) u (.b(bin), .g(o_gray));
endmodule

module bin2gray #(parameter W = 4) (input [W-1:0] b, output [W-1:0] g);
  assign g = b ^ (b >> 1);
endmodule
