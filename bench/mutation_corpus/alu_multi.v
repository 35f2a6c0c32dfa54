// Combinational ALU made of three modules (top in the middle)
module arith (input [7:0] a, input [7:0] b, input sub, output [8:0] y);
  assign y = sub ? {1'b0, a} - {1'b0, b} : {1'b0, a} + {1'b0, b};
endmodule

module alu (input [7:0] a, input [7:0] b, input [1:0] op, output [7:0] y, output c);
  wire [8:0] ar;
  wire [7:0] lr;
  arith u_a (.a(a), .b(b), .sub(op[0]), .y(ar));
  logic_unit u_l (.a(a), .b(b), .sel(op[0]), .y(lr));
  assign y = op[1] ? lr : ar[7:0];
  assign c = op[1] ? 1'b0 : ar[8];
endmodule

module logic_unit (input [7:0] a, input [7:0] b, input sel, output [7:0] y);
  assign y = sel ? (a | b) : (a & b);
endmodule
