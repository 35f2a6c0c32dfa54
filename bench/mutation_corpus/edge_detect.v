// Rising and falling edge detector with synchronous reset rst
module edge_detect (input clk, input rst, input sig, output rise, output fall);
  reg prev;
  always @(posedge clk)
    if (rst) prev <= 1'b0;
    else prev <= sig;
  assign rise = sig & ~prev;
  assign fall = ~sig & prev;
endmodule
