// 4-entry dual-clock FIFO: write side wclk/wrstn, read side rclk/rrstn (both asynchronous,
// active low), gray-coded pointers through two-flop synchronisers (helpers before the top)
module sync2 #(parameter W = 3) (input clk, input rstn, input [W-1:0] d, output reg [W-1:0] q);
  reg [W-1:0] m;
  always @(posedge clk or negedge rstn)
    if (!rstn) begin m <= 0; q <= 0; end
    else begin m <= d; q <= m; end
endmodule

module bin2gray #(parameter W = 3) (input [W-1:0] b, output [W-1:0] g);
  assign g = b ^ (b >> 1);
endmodule

module fifo4 (input wclk, input wrstn, input winc, input [7:0] wdata, output wfull,
              input rclk, input rrstn, input rinc, output [7:0] rdata, output rempty);
  reg [7:0] mem [0:3];
  reg [2:0] wbin, rbin;
  wire [2:0] wgray, rgray, wgray_r, rgray_w;
  bin2gray #(3) g0 (.b(wbin), .g(wgray));
  bin2gray #(3) g1 (.b(rbin), .g(rgray));
  sync2 #(3) s0 (.clk(rclk), .rstn(rrstn), .d(wgray), .q(wgray_r));
  sync2 #(3) s1 (.clk(wclk), .rstn(wrstn), .d(rgray), .q(rgray_w));
  assign wfull = (wgray == {~rgray_w[2:1], rgray_w[0]});
  assign rempty = (rgray == wgray_r);
  always @(posedge wclk or negedge wrstn)
    if (!wrstn) wbin <= 3'd0;
    else if (winc && !wfull) begin mem[wbin[1:0]] <= wdata; wbin <= wbin + 3'd1; end
  always @(posedge rclk or negedge rrstn)
    if (!rrstn) rbin <= 3'd0;
    else if (rinc && !rempty) rbin <= rbin + 3'd1;
  assign rdata = mem[rbin[1:0]];
endmodule
