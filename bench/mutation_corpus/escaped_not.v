// A helper with an escaped name (as netlists write them) and a top that uses it twice
module \$not (input A, output Y);
  assign Y = ~A;
endmodule

module nand_via_not (input a, input b, output y, output z);
  wire t;
  assign t = a & b;
  \$not  u0 (.A(t), .Y(y));
  \$not  u1 (.A(a | b), .Y(z));
endmodule
