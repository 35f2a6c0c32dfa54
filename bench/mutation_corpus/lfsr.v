// 8-bit Fibonacci LFSR (taps 8,6,5,4) with asynchronous active-low reset resetn to 8'h01
module lfsr8 (input clk, input resetn, input step, output reg [7:0] r);
  wire fb = r[7] ^ r[5] ^ r[4] ^ r[3];
  always @(posedge clk or negedge resetn)
    if (!resetn) r <= 8'h01;
    else if (step) r <= {r[6:0], fb};
endmodule
