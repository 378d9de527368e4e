// The page imports the SDK as `./warren.js`: the node serves dist/src/index.js under that name
// (src/edge/play.rs). This file gives that import the SDK's types.
export * from "../src/index.js";
