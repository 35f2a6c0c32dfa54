// Timer with a rare event: 'done' rises after 600 enabled cycles (needs a long run), reset wrst
module rare_timer (input clk, input wrst, input en, output reg done, output reg [9:0] t);
  always @(posedge clk) begin
    if (wrst) begin t <= 10'd0; done <= 1'b0; end
    else if (en && !done) begin
      if (t == 10'd599) done <= 1'b1;
      t <= t + 10'd1;
    end
  end
endmodule
