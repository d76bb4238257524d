#!/usr/bin/env node
// The agent is TypeScript run through tsx's loader, so `npx mirrorplane-agent` works
// straight after `npm install` with no build step.
import { register } from "tsx/esm/api";

register();
await import("../src/cli.ts");
