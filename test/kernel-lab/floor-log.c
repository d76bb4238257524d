// floor-log: the lab's floor for a userspace dirty log (PB9, issue 11). NOT a product
// component and not a cluster log: one process, one thread, blocking recv(), a core log's
// bitmaps in memory, each dm-log-userspace request answered the moment it arrives. It is
// what the kernel's round trip costs when the server adds as little as any server can
// (no event loop, no JIT, no ordering, no peers), so the benchmark can say how much of
// the gap between the agent and the kernel's own `core` log is the protocol and the
// connector under TCG, and how much is the agent.
//
// Serves `clustered-core` tables only (a `clustered-disk` CTR is refused with -EINVAL).
// IS_REMOTE_RECOVERING answers "nothing remote" (there are no peers); resync work is handed
// out by a cursor over the sync bits. uapi: include/uapi/linux/dm-log-userspace.h, v3.
//
// Build: gcc -O2 -o floor-log floor-log.c     Run as root: ./floor-log [-v]
#include <errno.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CN_IDX_DM 0x7
#define CN_VAL_DM_USERSPACE_LOG 0x1
#define MAX_LOGS 16
#define BUF_SIZE 16384

enum {
  CTR = 1, DTR, PRESUSPEND, POSTSUSPEND, RESUME, GET_REGION_SIZE, IS_CLEAN, IN_SYNC, FLUSH,
  MARK_REGION, CLEAR_REGION, GET_RESYNC_WORK, SET_REGION_SYNC, GET_SYNC_COUNT, STATUS_INFO,
  STATUS_TABLE, IS_REMOTE_RECOVERING
};

struct ulog_request {
  uint64_t luid;
  char uuid[129];
  char padding[3];
  uint32_t version;
  int32_t error;
  uint32_t seq;
  uint32_t request_type;
  uint32_t data_size;
  char data[];
};

struct log {
  int used;
  uint64_t luid;
  char uuid[129];
  uint64_t region_size;
  uint64_t region_count;
  uint64_t sync_count;
  uint64_t cursor; // every region below it is in sync, unless a SET_REGION_SYNC said not
  uint8_t *sync; // one byte per region: simpler than bits, and this is a floor, not a product
  uint8_t *clean;
};

static struct log logs[MAX_LOGS];
static volatile sig_atomic_t stopping, report;
static unsigned long counts[18]; // requests answered, by type

static struct log *find(uint64_t luid, const char *uuid) {
  for (int i = 0; i < MAX_LOGS; i++)
    if (logs[i].used && logs[i].luid == luid && strncmp(logs[i].uuid, uuid, 128) == 0)
      return &logs[i];
  return NULL;
}

// CTR payload: "<target length> clustered-core <region size> [sync|nosync]" (NUL counted).
static int ctr(struct ulog_request *rq, uint32_t in_size) {
  char args[1024];
  size_t n = in_size < sizeof args - 1 ? in_size : sizeof args - 1;
  memcpy(args, rq->data, n);
  args[n] = 0;
  unsigned long long length = 0, region_size = 0;
  char type[64] = "", sync[16] = "";
  int got = sscanf(args, "%llu %63s %llu %15s", &length, type, &region_size, sync);
  if (got < 3 || strcmp(type, "clustered-core") != 0 || region_size == 0) return -EINVAL;
  struct log *lg = NULL;
  for (int i = 0; i < MAX_LOGS && !lg; i++)
    if (!logs[i].used) lg = &logs[i];
  if (!lg) return -ENOMEM;
  memset(lg, 0, sizeof *lg);
  lg->used = 1;
  lg->luid = rq->luid;
  memcpy(lg->uuid, rq->uuid, 128);
  lg->region_size = region_size;
  lg->region_count = (length + region_size - 1) / region_size;
  lg->sync = calloc(lg->region_count, 1);
  lg->clean = malloc(lg->region_count);
  memset(lg->clean, 1, lg->region_count);
  if (strcmp(sync, "nosync") == 0) {
    memset(lg->sync, 1, lg->region_count);
    lg->sync_count = lg->region_count;
    lg->cursor = lg->region_count;
  }
  return 0;
}

static void put_i64(struct ulog_request *rq, int64_t v) {
  memcpy(rq->data, &v, 8);
  rq->data_size = 8;
}

// Answers one request in place; returns the error for the reply.
static int handle(struct ulog_request *rq, size_t room) {
  uint32_t type = rq->request_type & 0xff;
  uint32_t in_size = rq->data_size;
  rq->data_size = 0;
  if (type == CTR) return ctr(rq, in_size);
  struct log *lg = find(rq->luid, rq->uuid);
  if (!lg) return -EINVAL;
  uint64_t region = 0;
  if (in_size >= 8) memcpy(&region, rq->data, 8);
  switch (type) {
  case DTR:
    free(lg->sync);
    free(lg->clean);
    lg->used = 0;
    return 0;
  case PRESUSPEND:
  case POSTSUSPEND:
  case RESUME:
    return 0;
  case GET_REGION_SIZE:
    put_i64(rq, (int64_t)lg->region_size);
    return 0;
  case IS_CLEAN:
    if (region >= lg->region_count) return -EINVAL;
    put_i64(rq, lg->clean[region]);
    return 0;
  case IN_SYNC:
    if (region >= lg->region_count) return -EINVAL;
    put_i64(rq, lg->sync[region]);
    return 0;
  case FLUSH: // with integrated_flush, the marks come as its payload
  case MARK_REGION:
  case CLEAR_REGION:
    for (uint32_t off = 0; off + 8 <= in_size; off += 8) {
      uint64_t r;
      memcpy(&r, rq->data + off, 8);
      if (r < lg->region_count) lg->clean[r] = type == CLEAR_REGION;
    }
    return 0;
  case GET_RESYNC_WORK: {
    while (lg->cursor < lg->region_count && lg->sync[lg->cursor]) lg->cursor++;
    int64_t i = lg->cursor < lg->region_count;
    uint64_t r = lg->cursor;
    if (i) lg->cursor++;
    memcpy(rq->data, &i, 8);
    memcpy(rq->data + 8, &r, 8);
    rq->data_size = 16;
    return 0;
  }
  case SET_REGION_SYNC: {
    int64_t in_sync = 0;
    if (in_size < 16 || region >= lg->region_count) return -EINVAL;
    memcpy(&in_sync, rq->data + 8, 8);
    if (in_sync && !lg->sync[region]) lg->sync_count++;
    if (!in_sync && lg->sync[region]) lg->sync_count--;
    lg->sync[region] = in_sync != 0;
    if (!in_sync && region < lg->cursor) lg->cursor = region;
    return 0;
  }
  case GET_SYNC_COUNT:
    put_i64(rq, (int64_t)lg->sync_count);
    return 0;
  case STATUS_INFO:
  case STATUS_TABLE: {
    int n = type == STATUS_INFO
                ? snprintf(rq->data, room, "3 clustered-core %s %c", lg->uuid,
                           lg->sync_count == lg->region_count ? 'A' : 'a')
                : snprintf(rq->data, room, "clustered-core %llu",
                           (unsigned long long)lg->region_size);
    rq->data_size = (uint32_t)n + 1;
    return 0;
  }
  case IS_REMOTE_RECOVERING: {
    int64_t recovering = 0;
    uint64_t hint = lg->cursor;
    memcpy(rq->data, &recovering, 8);
    memcpy(rq->data + 8, &hint, 8);
    rq->data_size = 16;
    return 0;
  }
  default:
    return -EINVAL;
  }
}

static void on_signal(int sig) {
  if (sig == SIGUSR1) report = 1;
  else stopping = 1;
}

// SIGUSR1: one line of the requests answered so far, by type (the benchmark's per-write
// request counts come from the difference of two such lines).
static void print_counts(void) {
  static const char *names[18] = {"", "CTR", "DTR", "PRESUSPEND", "POSTSUSPEND", "RESUME",
                                  "GET_REGION_SIZE", "IS_CLEAN", "IN_SYNC", "FLUSH",
                                  "MARK_REGION", "CLEAR_REGION", "GET_RESYNC_WORK",
                                  "SET_REGION_SYNC", "GET_SYNC_COUNT", "STATUS_INFO",
                                  "STATUS_TABLE", "IS_REMOTE_RECOVERING"};
  fprintf(stderr, "floor-log: counts");
  for (int i = 1; i < 18; i++) fprintf(stderr, " %s=%lu", names[i], counts[i]);
  fprintf(stderr, "\n");
}

int main(int argc, char **argv) {
  int verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
  int fd = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_CONNECTOR);
  if (fd < 0) {
    perror("floor-log: socket");
    return 1;
  }
  struct sockaddr_nl addr = {.nl_family = AF_NETLINK, .nl_groups = 1u << (CN_IDX_DM - 1)};
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    perror("floor-log: bind");
    return 1;
  }
  int group = CN_IDX_DM;
  setsockopt(fd, 270 /* SOL_NETLINK */, NETLINK_ADD_MEMBERSHIP, &group, sizeof group);
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);
  static char buf[BUF_SIZE] __attribute__((aligned(8)));
  unsigned long served = 0;
  fprintf(stderr, "floor-log: serving dm-log-userspace (group %d)\n", CN_IDX_DM);
  while (!stopping) {
    if (report) {
      report = 0;
      print_counts();
    }
    ssize_t got = recv(fd, buf, sizeof buf, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      perror("floor-log: recv");
      return 1;
    }
    struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
    if ((size_t)got < NLMSG_HDRLEN + sizeof(struct cn_msg) + sizeof(struct ulog_request))
      continue;
    struct cn_msg *cn = NLMSG_DATA(nlh);
    if (cn->id.idx != CN_IDX_DM || cn->id.val != CN_VAL_DM_USERSPACE_LOG) continue;
    struct ulog_request *rq = (struct ulog_request *)cn->data;
    size_t room = sizeof buf - NLMSG_HDRLEN - sizeof(struct cn_msg) - sizeof *rq;
    rq->error = handle(rq, room);
    if (verbose || rq->error)
      fprintf(stderr, "floor-log: request %u seq %u: error %d, %u bytes back\n",
              rq->request_type & 0xff, rq->seq, rq->error, rq->data_size);
    cn->ack = 0;
    cn->len = (uint16_t)(sizeof *rq + rq->data_size);
    nlh->nlmsg_len = NLMSG_LENGTH(sizeof(struct cn_msg) + cn->len);
    nlh->nlmsg_type = NLMSG_DONE;
    nlh->nlmsg_flags = 0;
    nlh->nlmsg_pid = 0;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    if (sendto(fd, buf, nlh->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0)
      perror("floor-log: send");
    served++;
    if ((rq->request_type & 0xff) < 18) counts[rq->request_type & 0xff]++;
  }
  fprintf(stderr, "floor-log: served %lu requests\n", served);
  return 0;
}
