// 4-stage shift register of D flip-flops with asynchronous active-low reset rst_n (helper first)
module dffr (input clk, input rst_n, input d, output reg q);
  always @(posedge clk or negedge rst_n)
    if (!rst_n) q <= 1'b0;
    else q <= d;
endmodule

module shift4 (input clk, input rst_n, input din, output [3:0] q);
  dffr f0 (.clk(clk), .rst_n(rst_n), .d(din), .q(q[0]));
  dffr f1 (.clk(clk), .rst_n(rst_n), .d(q[0]), .q(q[1]));
  dffr f2 (.clk(clk), .rst_n(rst_n), .d(q[1]), .q(q[2]));
  dffr f3 (.clk(clk), .rst_n(rst_n), .d(q[2]), .q(q[3]));
endmodule
