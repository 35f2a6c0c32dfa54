// PWM: free-running 4-bit counter compared with a duty value; reset rst_ni (asynchronous, active low)
module cnt4 (input clk_i, input rst_ni, output reg [3:0] c);
  always @(posedge clk_i or negedge rst_ni)
    if (!rst_ni) c <= 4'd0;
    else c <= c + 4'd1;
endmodule

module pwm (input clk_i, input rst_ni, input [3:0] duty, output pwm_o);
  wire [3:0] c;
  cnt4 u_cnt (.clk_i(clk_i), .rst_ni(rst_ni), .c(c));
  assign pwm_o = (c < duty);
endmodule
