// Linux errno values used on the dm-log-userspace link. Replies carry them negated in
// `dm_ulog_request.error` (spec §1.4); bare connector ACKs carry them positive (spec §1.1).
export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EIO = 5;
export const ENXIO = 6;
export const EAGAIN = 11;
export const EBUSY = 16;
export const EEXIST = 17;
export const EINVAL = 22;
export const ENOSPC = 28;
