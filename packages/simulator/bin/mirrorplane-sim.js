#!/usr/bin/env node
// The simulator is TypeScript run through tsx's loader, so `npx mirrorplane-sim` works
// straight after `npm install` with no build step (`npm start` runs the bundle, dist/cli.mjs).
import { register } from "tsx/esm/api";

register();
await import("../src/cli.ts");
