/* layer_device: the device placeholders of single-ID mode.  A user
 * namespace cannot make a device node, so the supervisor (seccomp_notify.c)
 * answers a RUN step's mknod of a character or block device with an empty
 * regular file carrying OB_LAYER_DEVICE_XATTR; the layer writers turn it
 * into the device.  The value is checked strictly: anything but what the
 * supervisor writes leaves a regular file. */
#include "config.h"
#include <obuild/layer.h>
#include "layer_priv.h"

#include <archive_entry.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

/* A decimal number without sign or leading zeros, at most max. */
static bool
parse_dec (const char **p, const char *end, unsigned long max, unsigned long *out)
{
  const char *s = *p;
  unsigned long v = 0;
  if (s == end || *s < '0' || *s > '9' || (*s == '0' && s + 1 < end && s[1] >= '0' && s[1] <= '9'))
    return false;
  for (; s < end && *s >= '0' && *s <= '9'; s++)
    {
      v = v * 10 + (unsigned long) (*s - '0');
      if (v > max)
        return false;
    }
  *p = s;
  *out = v;
  return true;
}

int
ob_layer_device_parse (const char *value, size_t len, mode_t *type, dev_t *rdev)
{
  const char *p = value, *end = value + len;
  unsigned long ma, mi;
  if (value == NULL || len < 5 || (p[0] != 'c' && p[0] != 'b') || p[1] != ' ')
    return -1;
  p += 2;
  /* the kernel's dev_t: 12 bits of major, 20 of minor */
  if (!parse_dec (&p, end, 4095, &ma) || p == end || *p++ != ':'
      || !parse_dec (&p, end, 1048575, &mi) || p != end)
    return -1;
  *type = value[0] == 'c' ? S_IFCHR : S_IFBLK;
  *rdev = makedev (ma, mi);
  return 0;
}

void
ob_layer_device_format (char *buf, size_t size, mode_t type, dev_t rdev)
{
  snprintf (buf, size, "%c %u:%u", S_ISBLK (type) ? 'b' : 'c', major (rdev), minor (rdev));
}

bool
ob_layer_device_entry (struct archive_entry *e, const char *value, size_t len, mode_t mode)
{
  mode_t type;
  dev_t rdev;
  if (ob_layer_device_parse (value, len, &type, &rdev) < 0)
    return false;
  archive_entry_set_mode (e, type | (mode & 07777));
  archive_entry_set_rdevmajor (e, major (rdev));
  archive_entry_set_rdevminor (e, minor (rdev));
  archive_entry_set_size (e, 0);
  return true;
}
