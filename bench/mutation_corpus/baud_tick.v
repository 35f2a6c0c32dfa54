// Baud tick generator: one-cycle tick every DIV enabled cycles, reset brstn (synchronous, active low)
module baud_tick #(parameter DIV = 5) (input clk, input brstn, input en, output reg tick, output reg [3:0] cnt);
  always @(posedge clk) begin
    if (!brstn) begin
      cnt <= 4'd0;
      tick <= 1'b0;
    end else if (en) begin
      if (cnt == DIV - 1) begin cnt <= 4'd0; tick <= 1'b1; end
      else begin cnt <= cnt + 4'd1; tick <= 1'b0; end
    end else tick <= 1'b0;
  end
endmodule
