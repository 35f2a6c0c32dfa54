// Accumulator with a synchronous clear named clr (a reset found by use, not by name) and a helper adder
module add12 (input [11:0] a, input [7:0] b, output [11:0] s);
  assign s = a + {4'd0, b};
endmodule

module acc (input clk, input clr, input [7:0] d, input v, output reg [11:0] sum);
  wire [11:0] s;
  add12 u (.a(sum), .b(d), .s(s));
  always @(posedge clk)
    if (clr) sum <= 12'd0;
    else if (v) sum <= s;
endmodule
