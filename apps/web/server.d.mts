import type { IncomingMessage, RequestListener, Server } from "node:http";

export declare const peerHeader: "x-mirrorplane-peer";
export declare function tagPeer(req: IncomingMessage): void;
export declare function createWebServer(handle: RequestListener): Server;
