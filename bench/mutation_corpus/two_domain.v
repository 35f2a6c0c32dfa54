// Two clock domains: a counter on clk_a and a toggle register on clk_b, one synchronous reset rst
module two_domain (input clk_a, input clk_b, input rst, input [3:0] d, output reg [3:0] qa, output reg [3:0] qb);
  always @(posedge clk_a)
    if (rst) qa <= 4'd0;
    else qa <= qa + d;
  always @(posedge clk_b)
    if (rst) qb <= 4'd0;
    else qb <= qb ^ d;
endmodule
