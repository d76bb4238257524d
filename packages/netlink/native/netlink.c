// @mirrorplane/netlink — the smallest native piece the agent needs: an AF_NETLINK datagram
// socket. It opens, binds, joins/leaves multicast groups, sends and receives whole
// datagrams (non-blocking), tells when the socket is readable through a libuv poll handle,
// and closes. Nothing here knows the connector or dm-log-userspace framing: all protocol
// logic is TypeScript (packages/clusterlog/src/connector.ts, CLUSTERLOG-SPEC.md §1.1).
//
// Written against plain Node-API (node_api.h) and libuv (uv.h), both shipped with Node's
// headers, so building needs no npm dependency.
#define NAPI_VERSION 8
#include <errno.h>
#include <stdio.h>
#include <linux/netlink.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

#define CHECK(call)                                                                        \
  do {                                                                                     \
    if ((call) != napi_ok) {                                                               \
      napi_throw_error(env, NULL, "napi call failed: " #call);                             \
      return NULL;                                                                         \
    }                                                                                      \
  } while (0)

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char code[32];
  char message[256];
  snprintf(code, sizeof code, "E%d", err);
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  napi_value error, errno_value, msg_value, code_value;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg_value);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value);
  napi_create_error(env, code_value, msg_value, &error);
  napi_create_int32(env, -err, &errno_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_value syscall;
  napi_create_string_utf8(env, what, NAPI_AUTO_LENGTH, &syscall);
  napi_set_named_property(env, error, "syscall", syscall);
  napi_throw(env, error);
  return NULL;
}

static int32_t arg_int(napi_env env, napi_value value) {
  int32_t out = 0;
  napi_get_value_int32(env, value, &out);
  return out;
}

static uint32_t arg_uint(napi_env env, napi_value value) {
  uint32_t out = 0;
  napi_get_value_uint32(env, value, &out);
  return out;
}

// open(protocol, bindGroupsMask) -> fd
static napi_value nl_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int protocol = arg_int(env, argv[0]);
  uint32_t groups = argc > 1 ? arg_uint(env, argv[1]) : 0;
  int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0) return throw_errno(env, "socket", errno);
  struct sockaddr_nl addr;
  memset(&addr, 0, sizeof addr);
  addr.nl_family = AF_NETLINK;
  addr.nl_pid = 0; // the kernel assigns a port id
  addr.nl_groups = groups;
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "bind", err);
  }
  napi_value result;
  CHECK(napi_create_int32(env, fd, &result));
  return result;
}

// portId(fd) -> the nl_pid the kernel bound this socket to
static napi_value nl_port_id(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct sockaddr_nl addr;
  socklen_t len = sizeof addr;
  if (getsockname(arg_int(env, argv[0]), (struct sockaddr *)&addr, &len) < 0)
    return throw_errno(env, "getsockname", errno);
  napi_value result;
  CHECK(napi_create_uint32(env, addr.nl_pid, &result));
  return result;
}

static napi_value membership(napi_env env, napi_callback_info info, int option,
                             const char *what) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  unsigned int group = arg_uint(env, argv[1]);
  if (setsockopt(arg_int(env, argv[0]), SOL_NETLINK, option, &group, sizeof group) < 0)
    return throw_errno(env, what, errno);
  napi_value result;
  napi_get_undefined(env, &result);
  return result;
}

// join(fd, group) / leave(fd, group): NETLINK_ADD/DROP_MEMBERSHIP (group number, not mask)
static napi_value nl_join(napi_env env, napi_callback_info info) {
  return membership(env, info, NETLINK_ADD_MEMBERSHIP, "setsockopt(NETLINK_ADD_MEMBERSHIP)");
}
static napi_value nl_leave(napi_env env, napi_callback_info info) {
  return membership(env, info, NETLINK_DROP_MEMBERSHIP, "setsockopt(NETLINK_DROP_MEMBERSHIP)");
}

// memberships(fd) -> number[] of joined group numbers (NETLINK_LIST_MEMBERSHIPS, Linux 4.2+)
static napi_value nl_memberships(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t words[32];
  socklen_t len = sizeof words;
  memset(words, 0, sizeof words);
  if (getsockopt(arg_int(env, argv[0]), SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, words, &len) < 0)
    return throw_errno(env, "getsockopt(NETLINK_LIST_MEMBERSHIPS)", errno);
  napi_value result;
  CHECK(napi_create_array(env, &result));
  uint32_t n = 0;
  size_t count = len / sizeof(uint32_t);
  if (count > 32) count = 32;
  for (size_t w = 0; w < count; w++) {
    for (int b = 0; b < 32; b++) {
      if (words[w] & (1u << b)) {
        napi_value group;
        napi_create_uint32(env, (uint32_t)(w * 32 + b + 1), &group);
        napi_set_element(env, result, n++, group);
      }
    }
  }
  return result;
}

// send(fd, bytes, portId, groupsMask) -> bytes sent, or -errno (EAGAIN etc.; never throws)
static napi_value nl_send(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *data = NULL;
  size_t length = 0;
  CHECK(napi_get_typedarray_info(env, argv[1], NULL, &length, &data, NULL, NULL));
  struct sockaddr_nl dest;
  memset(&dest, 0, sizeof dest);
  dest.nl_family = AF_NETLINK;
  dest.nl_pid = argc > 2 ? arg_uint(env, argv[2]) : 0; // 0 = the kernel
  dest.nl_groups = argc > 3 ? arg_uint(env, argv[3]) : 0;
  ssize_t sent = sendto(arg_int(env, argv[0]), data, length, MSG_DONTWAIT,
                        (struct sockaddr *)&dest, sizeof dest);
  napi_value result;
  CHECK(napi_create_int32(env, sent < 0 ? -errno : (int32_t)sent, &result));
  return result;
}

// recv(fd, buffer) -> datagram length (> buffer length = truncated), or -errno (-EAGAIN: none)
static napi_value nl_recv(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *data = NULL;
  size_t length = 0;
  CHECK(napi_get_typedarray_info(env, argv[1], NULL, &length, &data, NULL, NULL));
  ssize_t got = recv(arg_int(env, argv[0]), data, length, MSG_DONTWAIT | MSG_TRUNC);
  napi_value result;
  CHECK(napi_create_int32(env, got < 0 ? -errno : (int32_t)got, &result));
  return result;
}

// ---- readability through libuv ----

typedef struct {
  uv_poll_t handle;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  int closing;       // stopped: no more callbacks
  int handle_closed; // libuv is done with the handle
  int finalized;     // the JS external was garbage-collected
} poller_t;

// The poller is freed when both libuv and the JS external are done with it, whichever
// comes last (unpoll closes the handle long before the external is collected).
static void on_poll_closed(uv_handle_t *handle) {
  poller_t *p = (poller_t *)handle->data;
  p->handle_closed = 1;
  if (p->finalized) free(p);
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  poller_t *p = (poller_t *)handle->data;
  if (p->closing) return;
  napi_env env = p->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value callback, global, args[1];
  if (napi_get_reference_value(env, p->callback, &callback) == napi_ok && callback != NULL) {
    napi_get_global(env, &global);
    napi_create_int32(env, status < 0 ? status : 0, &args[0]);
    napi_value ignored;
    // make_callback runs the microtask queue afterwards, like any libuv-driven callback.
    napi_make_callback(env, p->context, global, callback, 1, args, &ignored);
  }
  napi_close_handle_scope(env, scope);
}

static void finalize_poller(napi_env env, void *data, void *hint) {
  (void)hint;
  poller_t *p = (poller_t *)data;
  p->finalized = 1;
  if (!p->closing) {
    // The JS side dropped the poller without stopping it: stop; freed once closed.
    p->closing = 1;
    uv_poll_stop(&p->handle);
    napi_delete_reference(env, p->callback);
    napi_async_destroy(env, p->context);
    uv_close((uv_handle_t *)&p->handle, on_poll_closed);
  } else if (p->handle_closed) {
    free(p);
  }
}

// poll(fd, callback) -> poller (external); callback(status) whenever fd is readable
static napi_value nl_poll(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uv_loop_t *loop = NULL;
  CHECK(napi_get_uv_event_loop(env, &loop));
  poller_t *p = calloc(1, sizeof(poller_t));
  if (!p) return throw_errno(env, "calloc", ENOMEM);
  p->env = env;
  int rc = uv_poll_init(loop, &p->handle, arg_int(env, argv[0]));
  if (rc < 0) {
    free(p);
    return throw_errno(env, "uv_poll_init", -rc);
  }
  p->handle.data = p;
  napi_value name;
  napi_create_string_utf8(env, "mirrorplane:netlink-poll", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &p->context);
  napi_create_reference(env, argv[1], 1, &p->callback);
  rc = uv_poll_start(&p->handle, UV_READABLE, on_readable);
  if (rc < 0) {
    p->closing = 1;
    p->finalized = 1; // no external will own it
    napi_delete_reference(env, p->callback);
    napi_async_destroy(env, p->context);
    uv_close((uv_handle_t *)&p->handle, on_poll_closed);
    return throw_errno(env, "uv_poll_start", -rc);
  }
  napi_value external;
  CHECK(napi_create_external(env, p, finalize_poller, NULL, &external));
  return external;
}

// unpoll(poller): stop watching; the handle is released asynchronously by libuv
static napi_value nl_unpoll(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  poller_t *p = NULL;
  CHECK(napi_get_value_external(env, argv[0], (void **)&p));
  napi_value result;
  napi_get_undefined(env, &result);
  if (!p || p->closing) return result;
  p->closing = 1;
  uv_poll_stop(&p->handle);
  napi_delete_reference(env, p->callback);
  napi_async_destroy(env, p->context);
  // Freed by whichever of on_poll_closed and the external's finalizer runs last.
  uv_close((uv_handle_t *)&p->handle, on_poll_closed);
  return result;
}

// close(fd)
static napi_value nl_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (close(arg_int(env, argv[0])) < 0) return throw_errno(env, "close", errno);
  napi_value result;
  napi_get_undefined(env, &result);
  return result;
}

// flock(fd, operation) -> 0, or -errno (-EWOULDBLOCK: held elsewhere with LOCK_NB; never
// throws). The kernel's advisory lock on the open file description: released when the last
// descriptor of it is closed, so also when its holder dies however it dies (no PID file).
// The agent holds one on its connector lock file while it serves group 7 (one per host).
static napi_value nl_flock(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int rc;
  do {
    rc = flock(arg_int(env, argv[0]), arg_int(env, argv[1]));
  } while (rc < 0 && errno == EINTR);
  napi_value result;
  CHECK(napi_create_int32(env, rc < 0 ? -errno : 0, &result));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, nl_open, NULL, NULL, NULL, napi_default, NULL},
      {"portId", NULL, nl_port_id, NULL, NULL, NULL, napi_default, NULL},
      {"join", NULL, nl_join, NULL, NULL, NULL, napi_default, NULL},
      {"leave", NULL, nl_leave, NULL, NULL, NULL, napi_default, NULL},
      {"memberships", NULL, nl_memberships, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, nl_send, NULL, NULL, NULL, napi_default, NULL},
      {"recv", NULL, nl_recv, NULL, NULL, NULL, napi_default, NULL},
      {"poll", NULL, nl_poll, NULL, NULL, NULL, napi_default, NULL},
      {"unpoll", NULL, nl_unpoll, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, nl_close, NULL, NULL, NULL, napi_default, NULL},
      {"flock", NULL, nl_flock, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
