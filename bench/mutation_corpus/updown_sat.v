// Saturating up/down counter 0..12, synchronous active-low reset sys_rst_n
module updown_sat (input sys_clk, input sys_rst_n, input up, input down, output reg [3:0] level,
                   output full, output empty);
  always @(posedge sys_clk) begin
    if (!sys_rst_n) level <= 4'd0;
    else if (up && !down && level != 4'd12) level <= level + 4'd1;
    else if (down && !up && level != 4'd0) level <= level - 4'd1;
  end
  assign full = (level == 4'd12);
  assign empty = (level == 4'd0);
endmodule
