// 8-bit counter, synchronous active-high reset, enable; the adder is a helper written after the top
module counter_en (input clk, input reset, input en, output reg [7:0] q, output wrap);
  wire [7:0] nxt;
  incr8 u_inc (.a(q), .y(nxt));
  always @(posedge clk) begin
    if (reset) q <= 8'd0;
    else if (en) q <= nxt;
  end
  assign wrap = en & (q == 8'hff);
endmodule

module incr8 (input [7:0] a, output [7:0] y);
  assign y = a + 8'd1;
endmodule
