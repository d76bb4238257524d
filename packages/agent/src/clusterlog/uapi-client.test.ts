import { execFile, execFileSync, spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCluster } from "../../testing/server-harness.ts";

// "A program written against the kernel's own uapi header can drive the server through
// the socket": a C client built on <linux/dm-log-userspace.h> (linux-libc-dev), framing
// each struct dm_ulog_request with its 32-bit length like the local transport wants.

const header = "/usr/include/linux/dm-log-userspace.h";
const haveCc = existsSync(header) && spawnSync("cc", ["--version"]).status === 0;

const PROGRAM = String.raw`
#include <linux/dm-log-userspace.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int fd;
static char buf[4096];

static struct dm_ulog_request *call(uint32_t type, uint32_t seq, const void *data, uint32_t size) {
  struct dm_ulog_request *rq = (void *)(buf + 4);
  memset(buf, 0, sizeof(buf));
  rq->luid = 0xffff888012345678ULL;
  strcpy(rq->uuid, "LVM-uapi");
  rq->version = DM_ULOG_REQUEST_VERSION;
  rq->seq = seq;
  rq->request_type = type;
  rq->data_size = size;
  memcpy(rq->data, data, size);
  uint32_t len = sizeof(*rq) + size;
  memcpy(buf, &len, 4);
  if (write(fd, buf, 4 + len) != 4 + len) exit(10);
  uint32_t rlen, got = 0;
  if (read(fd, &rlen, 4) != 4) exit(11);
  while (got < rlen) { ssize_t n = read(fd, buf + 4 + got, rlen - got); if (n <= 0) exit(12); got += n; }
  if (rq->seq != seq || rlen != sizeof(*rq) + rq->data_size) exit(13);
  return rq;
}

int main(int argc, char **argv) {
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  strncpy(addr.sun_path, argv[1], sizeof(addr.sun_path) - 1);
  fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (connect(fd, (void *)&addr, sizeof(addr))) return 2;
  const char *ctr = "40960 clustered-core 1024 nosync";
  struct dm_ulog_request *r = call(DM_ULOG_CTR, 1, ctr, strlen(ctr));
  printf("CTR %d %u\n", r->error, r->data_size);
  r = call(DM_ULOG_RESUME, 2, NULL, 0);
  printf("RESUME %d\n", r->error);
  uint64_t marks[2] = { 5, 9 };
  r = call(DM_ULOG_FLUSH, 42, marks, sizeof(marks));
  printf("FLUSH %d %u\n", r->error, r->data_size);
  uint64_t region = 5;
  r = call(DM_ULOG_IS_CLEAN, 43, &region, sizeof(region));
  printf("IS_CLEAN(5) %d %lld\n", r->error, (long long)*(int64_t *)r->data);
  region = 6;
  r = call(DM_ULOG_IS_CLEAN, 44, &region, sizeof(region));
  printf("IS_CLEAN(6) %d %lld\n", r->error, (long long)*(int64_t *)r->data);
  r = call(DM_ULOG_GET_SYNC_COUNT, 45, NULL, 0);
  printf("GET_SYNC_COUNT %d %llu\n", r->error, (unsigned long long)*(uint64_t *)r->data);
  r = call(DM_ULOG_CLEAR_REGION, 46, marks, sizeof(marks));
  printf("CLEAR %d %u\n", r->error, r->data_size);
  r = call(DM_ULOG_STATUS_INFO, 47, NULL, 0);
  printf("STATUS_INFO %d %.*s\n", r->error, (int)r->data_size, r->data);
  return 0;
}
`;

let cluster: TestCluster;
let exe = "";
beforeAll(async () => {
  cluster = await TestCluster.create();
  await cluster.startNode(1);
  if (haveCc) {
    writeFileSync(join(cluster.dir, "client.c"), PROGRAM);
    exe = join(cluster.dir, "client");
    execFileSync("cc", ["-O1", "-o", exe, join(cluster.dir, "client.c")]);
  }
});
afterAll(async () => {
  await cluster.close();
});

describe.skipIf(!haveCc)("a C client on the kernel's uapi header", () => {
  it("drives the server through the socket and gets the kernel's answers", async () => {
    // Asynchronously: the server runs in this process.
    const run = await promisify(execFile)(exe, [cluster.node(1).socketPath], { encoding: "utf8" });
    expect(run.stdout.trim().split("\n")).toEqual([
      "CTR 0 0",
      "RESUME 0",
      "FLUSH 0 0",
      "IS_CLEAN(5) 0 0",
      "IS_CLEAN(6) 0 1",
      "GET_SYNC_COUNT 0 40",
      "CLEAR 0 0",
      "STATUS_INFO 0 1 clustered-core",
    ]);
  });
});
