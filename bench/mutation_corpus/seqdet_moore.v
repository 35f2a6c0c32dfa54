// Moore detector of the sequence 1011 (overlapping), asynchronous active-high reset areset;
// next-state logic in a helper module
module seq_next (input [2:0] s, input x, output reg [2:0] n);
  localparam S0 = 3'd0, S1 = 3'd1, S10 = 3'd2, S101 = 3'd3, S1011 = 3'd4;
  always @(*) begin
    case (s)
      S0: n = x ? S1 : S0;
      S1: n = x ? S1 : S10;
      S10: n = x ? S101 : S0;
      S101: n = x ? S1011 : S10;
      S1011: n = x ? S1 : S10;
      default: n = S0;
    endcase
  end
endmodule

module seqdet (input clk, input areset, input x, output z);
  reg [2:0] state;
  wire [2:0] nxt;
  seq_next u (.s(state), .x(x), .n(nxt));
  always @(posedge clk or posedge areset)
    if (areset) state <= 3'd0;
    else state <= nxt;
  assign z = (state == 3'd4);
endmodule
