// Mealy machine written with `default_nettype none and macros; synchronous reset reset
`default_nettype none
`define IDLE 2'd0
`define RUN  2'd1
`define DONE 2'd2
module mealy (input wire clk, input wire reset, input wire go, input wire stop, output reg busy, output wire pulse);
  reg [1:0] st;
  always @(posedge clk) begin
    if (reset) begin st <= `IDLE; busy <= 1'b0; end
    else case (st)
      `IDLE: if (go) begin st <= `RUN; busy <= 1'b1; end
      `RUN: if (stop) begin st <= `DONE; busy <= 1'b0; end
      default: st <= `IDLE;
    endcase
  end
  assign pulse = (st == `RUN) & stop;
endmodule
`default_nettype wire
