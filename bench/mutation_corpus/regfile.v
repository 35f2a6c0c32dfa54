// 4 x 8 register file, one write port and two read ports, asynchronous active-high reset rst
module regfile (input clk, input rst, input we, input [1:0] wa, input [7:0] wd,
                input [1:0] ra0, input [1:0] ra1, output [7:0] rd0, output [7:0] rd1);
  reg [7:0] r0, r1, r2, r3;
  always @(posedge clk or posedge rst) begin
    if (rst) begin
      r0 <= 8'd0; r1 <= 8'd0; r2 <= 8'd0; r3 <= 8'd0;
    end else if (we) begin
      case (wa)
        2'd0: r0 <= wd;
        2'd1: r1 <= wd;
        2'd2: r2 <= wd;
        2'd3: r3 <= wd;
      endcase
    end
  end
  rf_mux m0 (.s(ra0), .a(r0), .b(r1), .c(r2), .d(r3), .y(rd0));
  rf_mux m1 (.s(ra1), .a(r0), .b(r1), .c(r2), .d(r3), .y(rd1));
endmodule

module rf_mux (input [1:0] s, input [7:0] a, input [7:0] b, input [7:0] c, input [7:0] d, output [7:0] y);
  assign y = s == 2'd0 ? a : s == 2'd1 ? b : s == 2'd2 ? c : d;
endmodule
