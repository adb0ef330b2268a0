// A worker that ends as soon as it is sent anything, without replying: what a crashed worker looks like.
declare const self: Worker;
self.onmessage = () => process.exit(1);
export {};
