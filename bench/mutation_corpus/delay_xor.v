// Gate delays without a `timescale: XOR with 2 units of delay, then an inverter with 3 (helper)
module inv_d (input a, output y);
  assign #3 y = ~a;
endmodule

module delay_xor (input a, input b, output y, output yn);
  assign #2 y = a ^ b;
  inv_d u (.a(y), .y(yn));
endmodule
