// Two-stage pipelined 4x4 multiplier with a valid bit, synchronous active-low reset rst_n
module pipe_mul (input clk, input rst_n, input in_valid, input [3:0] a, input [3:0] b,
                 output reg out_valid, output reg [7:0] p);
  reg [3:0] a1, b1;
  reg v1;
  always @(posedge clk) begin
    if (!rst_n) begin
      v1 <= 1'b0; out_valid <= 1'b0; a1 <= 4'd0; b1 <= 4'd0; p <= 8'd0;
    end else begin
      v1 <= in_valid; a1 <= a; b1 <= b;
      out_valid <= v1;
      p <= a1 * b1;
    end
  end
endmodule
