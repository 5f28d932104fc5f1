/*
 * Fleetward broker benchmark load generator: MQTT over mutual TLS on OpenSSL, one thread, epoll,
 * non-blocking sockets, many connections per thread, packets encoded by hand (MQTT 3.1.1 or 5).
 *
 * It measures one broker process from the outside: the broker's CPU (utime + stime of every
 * thread, /proc/<pid>/stat) and RSS (/proc/<pid>/status VmRSS) over the measured window, and its
 * own CPU (getrusage), so that CPU per operation can be compared between brokers whatever the
 * wall rate. One JSON object is printed on stdout; progress and errors go to stderr.
 *
 * Modes:
 *   connect  N connections, C at a time: TCP connect, full TLS handshake, CONNECT, CONNACK,
 *            DISCONNECT, close_notify, close. With --resume, each of the C slots first makes one
 *            full handshake (not measured) and then resumes with the newest TLS 1.3 ticket its
 *            slot received; how many handshakes were really resumed is reported.
 *   idle     N connections held open after CONNACK; the broker's RSS is sampled before and
 *            --hold seconds after the last CONNACK.
 *   pubsub   P publisher/subscriber pairs, one topic per pair, QoS 0 or 1, fixed payload; each
 *            pair keeps at most --window messages published but not yet delivered.
 *   fanout   one publisher at --rate messages/s, --subscribers subscribers of its one topic; the
 *            payload carries the send time (CLOCK_MONOTONIC), each delivery's latency is kept in
 *            a 1 µs histogram.
 *
 * Build: bench/broker/build.sh (gcc -O2, -lssl -lcrypto).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 256
#define READ_CHUNK 65536
#define HIST_US 1000000 /* latencies up to 1 s, 1 µs buckets; above goes to the last bucket */

enum mode { MODE_CONNECT, MODE_IDLE, MODE_PUBSUB, MODE_FANOUT };
enum role { ROLE_STORM, ROLE_IDLE, ROLE_SUB, ROLE_PUB };
enum state { ST_TCP, ST_TLS, ST_CONNACK, ST_SUBACK, ST_READY, ST_DONE };

struct conn {
  int fd;
  SSL *ssl;
  enum state state;
  enum role role;
  int index;    /* pair index (pubsub), slot (connect storm), subscriber number (fanout) */
  uint32_t events;
  unsigned char *in; /* bytes of a packet split across reads */
  size_t in_len, in_cap;
  unsigned char *out; /* plaintext waiting for SSL_write */
  size_t out_len, out_cap;
  uint16_t next_id;
  int write_wants_read;
};

struct pair {
  struct conn *pub, *sub;
  uint64_t sent, delivered;
};

/* ---- options ---- */
static const char *opt_host = "127.0.0.1";
static int opt_port = 0;
static const char *opt_ca, *opt_cert, *opt_key;
static int opt_pid = 0;
static enum mode opt_mode;
static int opt_connections = 1000, opt_concurrency = 16, opt_resume = 0;
static double opt_hold = 3.0;
static int opt_pairs = 50, opt_qos = 0, opt_payload = 100, opt_window = 20;
static int opt_subscribers = 100;
static double opt_rate = 1000, opt_warmup = 1.0, opt_seconds = 5.0;
static int opt_mqtt = 4, opt_keepalive = 60;

/* ---- state ---- */
static SSL_CTX *ctx;
static int ep;
static unsigned char scratch[READ_CHUNK];
static uint64_t conn_serial;
static long errors;
static char last_error[256];

/* connect storm */
static struct conn **slots;
static long storm_started, storm_done, storm_target, storm_reused;
static int storm_phase; /* 0: warm-up (resume only), 1: measured */

/* idle */
static long idle_connected, idle_started;

/* pubsub / fanout */
static struct pair *pairs;
static int subs_ready;
static struct conn *fan_pub;
static struct conn **fan_subs;
static uint64_t fan_sent, fan_delivered;
static uint32_t *hist;
static int measuring;
static uint64_t window_delivered;
static uint64_t window_sent;

static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "loadgen: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

static void note_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  errors++;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- measuring the broker and ourselves ---- */

/* utime + stime of every thread of the process, in seconds (fields 14 and 15 of /proc/<pid>/stat). */
static double broker_cpu_split(double *system) {
  *system = 0;
  if (opt_pid == 0) return 0;
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", opt_pid);
  FILE *f = fopen(path, "r");
  if (!f) fail("cannot read %s", path);
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')'); /* the command name may hold spaces */
  if (!p) fail("bad %s", path);
  unsigned long utime = 0, stime = 0;
  /* after ") " come fields 3..: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2) fail("bad %s", path);
  *system = (double)stime / (double)sysconf(_SC_CLK_TCK);
  return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static long broker_rss_kb(void) {
  if (opt_pid == 0) return 0;
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", opt_pid);
  FILE *f = fopen(path, "r");
  if (!f) fail("cannot read %s", path);
  long kb = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
  fclose(f);
  return kb;
}

static double self_cpu(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

struct sample {
  double wall, broker, broker_system, self;
};

static struct sample take_sample(void) {
  struct sample s;
  s.wall = now_s();
  s.broker = broker_cpu_split(&s.broker_system);
  s.self = self_cpu();
  return s;
}

/* ---- buffers ---- */

static void reserve(unsigned char **buf, size_t *cap, size_t need) {
  if (*cap >= need) return;
  size_t cap2 = *cap ? *cap : 256;
  while (cap2 < need) cap2 *= 2;
  *buf = realloc(*buf, cap2);
  if (!*buf) fail("out of memory");
  *cap = cap2;
}

static void out_append(struct conn *c, const void *bytes, size_t n) {
  reserve(&c->out, &c->out_cap, c->out_len + n);
  memcpy(c->out + c->out_len, bytes, n);
  c->out_len += n;
}

/* ---- MQTT encoding ---- */

static size_t put_varint(unsigned char *p, size_t value) {
  size_t n = 0;
  do {
    unsigned char byte = value % 128;
    value /= 128;
    if (value > 0) byte |= 0x80;
    p[n++] = byte;
  } while (value > 0);
  return n;
}

static size_t put_string(unsigned char *p, const char *s, size_t len) {
  p[0] = (unsigned char)(len >> 8);
  p[1] = (unsigned char)len;
  memcpy(p + 2, s, len);
  return len + 2;
}

static void queue_connect(struct conn *c) {
  char id[64];
  int id_len = snprintf(id, sizeof id, "lg-%d-%llu", (int)getpid(), (unsigned long long)++conn_serial);
  unsigned char body[128], packet[140];
  size_t b = 0;
  b += put_string(body + b, "MQTT", 4);
  body[b++] = (unsigned char)opt_mqtt;
  body[b++] = 0x02; /* clean session / clean start */
  body[b++] = (unsigned char)(opt_keepalive >> 8);
  body[b++] = (unsigned char)opt_keepalive;
  if (opt_mqtt == 5) body[b++] = 0; /* no properties */
  b += put_string(body + b, id, (size_t)id_len);
  size_t p = 0;
  packet[p++] = 0x10;
  p += put_varint(packet + p, b);
  memcpy(packet + p, body, b);
  out_append(c, packet, p + b);
}

static void queue_subscribe(struct conn *c, const char *topic, int qos) {
  unsigned char body[256], packet[270];
  size_t b = 0;
  body[b++] = 0;
  body[b++] = 1; /* packet id 1 */
  if (opt_mqtt == 5) body[b++] = 0;
  b += put_string(body + b, topic, strlen(topic));
  body[b++] = (unsigned char)qos;
  size_t p = 0;
  packet[p++] = 0x82;
  p += put_varint(packet + p, b);
  memcpy(packet + p, body, b);
  out_append(c, packet, p + b);
}

/* A PUBLISH with `payload_len` bytes; `stamp` (8 bytes, may be 0) is written at the payload's start. */
static void queue_publish(struct conn *c, const char *topic, int qos, size_t payload_len, uint64_t stamp) {
  size_t topic_len = strlen(topic);
  size_t rl = 2 + topic_len + (qos > 0 ? 2 : 0) + (opt_mqtt == 5 ? 1 : 0) + payload_len;
  unsigned char head[16];
  size_t h = 0;
  head[h++] = (unsigned char)(0x30 | (qos << 1));
  h += put_varint(head + h, rl);
  reserve(&c->out, &c->out_cap, c->out_len + h + rl);
  unsigned char *p = c->out + c->out_len;
  memcpy(p, head, h);
  p += h;
  p += put_string(p, topic, topic_len);
  if (qos > 0) {
    if (++c->next_id == 0) c->next_id = 1;
    *p++ = (unsigned char)(c->next_id >> 8);
    *p++ = (unsigned char)c->next_id;
  }
  if (opt_mqtt == 5) *p++ = 0;
  memset(p, 'x', payload_len);
  if (payload_len >= 8) memcpy(p, &stamp, 8);
  c->out_len += h + rl;
}

static void queue_puback(struct conn *c, uint16_t id) {
  unsigned char packet[4] = {0x40, 0x02, (unsigned char)(id >> 8), (unsigned char)id};
  out_append(c, packet, 4);
}

/* ---- connections ---- */

static void set_events(struct conn *c, uint32_t events) {
  if (c->events == events) return;
  struct epoll_event ev = {.events = events, .data.ptr = c};
  if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) fail("epoll_ctl: %s", strerror(errno));
  c->events = events;
}

/*
 * A device keeps the newest ticket it was given, serialized as it would be in flash, and offers it
 * on every reconnect until a newer one comes: a server may leave a ticket unrenewed after a
 * resumption (OpenSSL then sends none), and an OpenSSL client will not offer the same in-memory
 * SSL_SESSION twice, so each attempt decodes a fresh copy.
 */
static unsigned char **slot_ticket;
static int *slot_ticket_len;

static int new_session(SSL *ssl, SSL_SESSION *session) {
  struct conn *c = SSL_get_app_data(ssl);
  if (!c || c->role != ROLE_STORM || !slot_ticket) return 0;
  int len = i2d_SSL_SESSION(session, NULL);
  if (len <= 0) return 0;
  unsigned char *der = malloc((size_t)len), *p = der;
  i2d_SSL_SESSION(session, &p);
  free(slot_ticket[c->index]);
  slot_ticket[c->index] = der;
  slot_ticket_len[c->index] = len;
  return 0; /* OpenSSL frees its session */
}

static SSL_SESSION *slot_session(int slot) {
  if (!slot_ticket[slot]) return NULL;
  const unsigned char *p = slot_ticket[slot];
  return d2i_SSL_SESSION(NULL, &p, slot_ticket_len[slot]);
}

static struct conn *open_conn(enum role role, int index) {
  struct conn *c = calloc(1, sizeof *c);
  if (!c) fail("out of memory");
  c->role = role;
  c->index = index;
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) fail("socket: %s", strerror(errno));
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt_port)};
  inet_pton(AF_INET, opt_host, &addr.sin_addr);
  if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) fail("connect: %s", strerror(errno));
  c->state = ST_TCP;
  c->events = EPOLLOUT;
  struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) fail("epoll_ctl add: %s", strerror(errno));
  return c;
}

static void free_conn(struct conn *c) {
  if (c->ssl) SSL_free(c->ssl);
  if (c->fd >= 0) close(c->fd);
  free(c->in);
  free(c->out);
  free(c);
}

/* Sends DISCONNECT and close_notify (so the session stays resumable), then closes. */
static void close_conn(struct conn *c) {
  if (c->ssl && c->state >= ST_CONNACK && c->state != ST_DONE) {
    static const unsigned char disconnect[2] = {0xe0, 0x00};
    SSL_write(c->ssl, disconnect, 2);
  }
  if (c->ssl && c->state >= ST_CONNACK) SSL_shutdown(c->ssl);
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  c->state = ST_DONE;
  free_conn(c);
}

static void storm_next(int slot);

/* A connection that failed: counted; a storm slot starts its next connection. */
static void drop_conn(struct conn *c, const char *why) {
  note_error("%s", why);
  enum role role = c->role;
  int index = c->index;
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  if (role == ROLE_STORM) slots[index] = NULL;
  free_conn(c);
  if (role == ROLE_STORM) storm_next(index);
  else if (role != ROLE_IDLE) fail("a long-lived connection failed: %s", why);
}

/* Writes what is queued. Returns 0, or -1 when the connection failed. */
static int flush(struct conn *c) {
  c->write_wants_read = 0;
  while (c->out_len > 0) {
    int n = SSL_write(c->ssl, c->out, (int)c->out_len);
    if (n > 0) {
      memmove(c->out, c->out + n, c->out_len - (size_t)n);
      c->out_len -= (size_t)n;
      continue;
    }
    int err = SSL_get_error(c->ssl, n);
    if (err == SSL_ERROR_WANT_WRITE) {
      set_events(c, EPOLLIN | EPOLLOUT);
      return 0;
    }
    if (err == SSL_ERROR_WANT_READ) {
      c->write_wants_read = 1;
      return 0;
    }
    return -1;
  }
  if (c->state != ST_TCP && c->state != ST_TLS) set_events(c, EPOLLIN);
  return 0;
}

/* ---- protocol ---- */

static int on_connack(struct conn *c);
static void on_suback(struct conn *c);
static void on_publish(struct conn *c, const unsigned char *p, size_t len, int qos);
static void pubsub_refill(struct pair *pair);

/* Handles one complete packet; returns -1 when the connection is gone. */
static int on_packet(struct conn *c, const unsigned char *p, size_t header, size_t len) {
  unsigned type = p[0] >> 4;
  const unsigned char *body = p + header;
  switch (type) {
    case 2: /* CONNACK */
      if (c->state != ST_CONNACK) return 0;
      if (len < 2 || body[1] != 0) {
        drop_conn(c, "CONNACK refused");
        return -1;
      }
      return on_connack(c);
    case 9: /* SUBACK */
      if (len < 3 + (opt_mqtt == 5) || body[len - 1] >= 0x80) fail("SUBACK refused");
      on_suback(c);
      return 0;
    case 3: /* PUBLISH */
      on_publish(c, body, len, (p[0] >> 1) & 3);
      return 0;
    default: /* PUBACK, PINGRESP */
      return 0;
  }
}

/* Cuts plaintext into packets. Returns -1 when the connection is gone. */
static int on_bytes(struct conn *c, const unsigned char *data, size_t n) {
  const unsigned char *p = data;
  size_t avail = n;
  if (c->in_len > 0) {
    reserve(&c->in, &c->in_cap, c->in_len + n);
    memcpy(c->in + c->in_len, data, n);
    c->in_len += n;
    p = c->in;
    avail = c->in_len;
  }
  size_t off = 0;
  while (off < avail) {
    size_t rl = 0, mult = 1, i = 1;
    int complete = 0;
    for (; i < 5 && off + i < avail; i++) {
      rl += (p[off + i] & 0x7f) * mult;
      mult *= 128;
      if (!(p[off + i] & 0x80)) {
        complete = 1;
        break;
      }
    }
    if (!complete) break;
    size_t header = i + 1;
    if (off + header + rl > avail) break;
    if (on_packet(c, p + off, header, rl) < 0) return -1;
    off += header + rl;
  }
  size_t rest = avail - off;
  if (p == c->in) {
    memmove(c->in, c->in + off, rest);
    c->in_len = rest;
  } else if (rest > 0) {
    reserve(&c->in, &c->in_cap, rest);
    memcpy(c->in, p + off, rest);
    c->in_len = rest;
  }
  return 0;
}

static void on_readable(struct conn *c) {
  for (;;) {
    int n = SSL_read(c->ssl, scratch, sizeof scratch);
    if (n > 0) {
      if (on_bytes(c, scratch, (size_t)n) < 0) return;
      continue;
    }
    int err = SSL_get_error(c->ssl, n);
    if (err == SSL_ERROR_WANT_READ) break;
    if (err == SSL_ERROR_WANT_WRITE) {
      set_events(c, EPOLLIN | EPOLLOUT);
      break;
    }
    drop_conn(c, err == SSL_ERROR_ZERO_RETURN ? "closed by the broker" : "read failed");
    return;
  }
  if (c->out_len > 0 && flush(c) < 0) drop_conn(c, "write failed");
}

static int start_tls(struct conn *c) {
  int soerr = 0;
  socklen_t len = sizeof soerr;
  getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
  if (soerr != 0) {
    drop_conn(c, strerror(soerr));
    return -1;
  }
  c->ssl = SSL_new(ctx);
  SSL_set_fd(c->ssl, c->fd);
  SSL_set_app_data(c->ssl, c);
  SSL_set_connect_state(c->ssl);
  if (c->role == ROLE_STORM && opt_resume && storm_phase == 1) {
    SSL_SESSION *session = slot_session(c->index);
    if (session) {
      SSL_set_session(c->ssl, session);
      SSL_SESSION_free(session);
    }
  }
  c->state = ST_TLS;
  return 0;
}

static void handshake(struct conn *c) {
  int r = SSL_do_handshake(c->ssl);
  if (r == 1) {
    if (c->role == ROLE_STORM && storm_phase == 1 && SSL_session_reused(c->ssl)) storm_reused++;
    c->state = ST_CONNACK;
    queue_connect(c);
    if (flush(c) < 0) drop_conn(c, "write failed");
    return;
  }
  int err = SSL_get_error(c->ssl, r);
  if (err == SSL_ERROR_WANT_READ) set_events(c, EPOLLIN);
  else if (err == SSL_ERROR_WANT_WRITE) set_events(c, EPOLLOUT);
  else {
    unsigned long e = ERR_get_error();
    char why[200];
    snprintf(why, sizeof why, "handshake failed: %s", e ? ERR_error_string(e, NULL) : "connection closed");
    ERR_clear_error();
    drop_conn(c, why);
  }
}

static void on_event(struct conn *c, uint32_t events) {
  if (c->state == ST_TCP) {
    if (start_tls(c) < 0) return;
  }
  if (c->state == ST_TLS) {
    handshake(c);
    return;
  }
  if ((events & EPOLLOUT) && c->out_len > 0) {
    if (flush(c) < 0) {
      drop_conn(c, "write failed");
      return;
    }
  } else if ((events & EPOLLOUT) && c->out_len == 0) {
    set_events(c, EPOLLIN);
  }
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
  else if (c->write_wants_read && (events & EPOLLIN)) on_readable(c);
}

/* ---- connect storm ---- */

static void storm_next(int slot) {
  long limit = storm_phase == 0 ? opt_concurrency : storm_target;
  if (storm_started >= limit) return;
  storm_started++;
  slots[slot] = open_conn(ROLE_STORM, slot);
}

/* ---- pub/sub ---- */

static char topic_buf[64];

static const char *pair_topic(int i) {
  snprintf(topic_buf, sizeof topic_buf, "bench/pair/%d", i);
  return topic_buf;
}

/* Returns -1 when the connection is gone (a storm connection is closed once connected). */
static int on_connack(struct conn *c) {
  switch (c->role) {
    case ROLE_STORM: {
      int slot = c->index;
      close_conn(c);
      slots[slot] = NULL;
      storm_done++;
      storm_next(slot);
      return -1;
    }
    case ROLE_IDLE:
      c->state = ST_READY;
      idle_connected++;
      return 0;
    case ROLE_SUB:
      c->state = ST_SUBACK;
      queue_subscribe(c, opt_mode == MODE_FANOUT ? "bench/fan" : pair_topic(c->index), opt_qos);
      if (flush(c) < 0) fail("subscribe failed");
      return 0;
    case ROLE_PUB:
      c->state = ST_READY;
      return 0;
  }
  return 0;
}

static void on_suback(struct conn *c) {
  if (c->state != ST_SUBACK) return;
  c->state = ST_READY;
  subs_ready++;
}

static void pubsub_refill(struct pair *pair) {
  struct conn *pub = pair->pub;
  if (pub->state != ST_READY) return;
  uint64_t outstanding = pair->sent - pair->delivered;
  if (outstanding >= (uint64_t)opt_window) return;
  const char *topic = pair_topic(pub->index);
  for (uint64_t n = outstanding; n < (uint64_t)opt_window; n++) {
    queue_publish(pub, topic, opt_qos, (size_t)opt_payload, 0);
    pair->sent++;
  }
  if (flush(pub) < 0) fail("publish failed");
}

static void on_publish(struct conn *c, const unsigned char *body, size_t len, int qos) {
  size_t topic_len = ((size_t)body[0] << 8) | body[1];
  size_t off = 2 + topic_len;
  if (qos > 0) {
    uint16_t id = (uint16_t)((body[off] << 8) | body[off + 1]);
    off += 2;
    queue_puback(c, id);
  }
  if (opt_mqtt == 5) off += 1 + (body[off] & 0x7f); /* short property lengths only */
  if (opt_mode == MODE_PUBSUB) {
    struct pair *pair = &pairs[c->index];
    pair->delivered++;
    if (measuring) window_delivered++;
    /* Refill when half the window is free: batches writes like a busy device would. */
    if (pair->sent - pair->delivered <= (uint64_t)opt_window / 2) pubsub_refill(pair);
    return;
  }
  if (opt_mode == MODE_FANOUT && len >= off + 8) {
    uint64_t stamp;
    memcpy(&stamp, body + off, 8);
    fan_delivered++;
    if (measuring) {
      window_delivered++;
      uint64_t us = (now_ns() - stamp) / 1000;
      hist[us < HIST_US ? us : HIST_US - 1]++;
    }
  }
}

/* ---- event loop ---- */

static int timer_fd = -1;
static int timer_marker;
static double fan_started;

static void fanout_tick(void) {
  if (!fan_pub || fan_pub->state != ST_READY) return;
  uint64_t due = (uint64_t)((now_s() - fan_started) * opt_rate);
  if (due <= fan_sent) return;
  for (; fan_sent < due; fan_sent++) {
    queue_publish(fan_pub, "bench/fan", 0, (size_t)opt_payload, now_ns());
    if (measuring) window_sent++;
  }
  if (flush(fan_pub) < 0) fail("publish failed");
}

static void poll_once(int timeout_ms) {
  struct epoll_event events[MAX_EVENTS];
  int n = epoll_wait(ep, events, MAX_EVENTS, timeout_ms);
  if (n < 0 && errno != EINTR) fail("epoll_wait: %s", strerror(errno));
  for (int i = 0; i < n; i++) {
    if (events[i].data.ptr == &timer_marker) {
      uint64_t expirations;
      (void)!read(timer_fd, &expirations, sizeof expirations);
      fanout_tick();
      continue;
    }
    on_event(events[i].data.ptr, events[i].events);
  }
}

/* Polls until `done` says so, or until `seconds` have passed (when `done` is NULL, or to give up). */
static int run_until(int (*done)(void), double seconds) {
  double deadline = now_s() + seconds;
  while (!(done && done())) {
    double left = deadline - now_s();
    if (left <= 0) return done ? -1 : 0;
    poll_once(left > 0.05 ? 50 : (int)(left * 1000) + 1);
  }
  return 0;
}

static long storm_active(void) {
  long active = 0;
  for (int i = 0; i < opt_concurrency; i++) active += slots[i] != NULL;
  return active;
}

static int storm_finished(void) { return storm_active() == 0; }
static int idle_finished(void) { return idle_connected + errors >= idle_started && idle_started >= opt_connections; }
static int subs_finished(void) { return subs_ready >= (opt_mode == MODE_FANOUT ? opt_subscribers : opt_pairs); }

static int pubs_finished(void) {
  if (opt_mode == MODE_FANOUT) return fan_pub->state == ST_READY;
  for (int i = 0; i < opt_pairs; i++)
    if (pairs[i].pub->state != ST_READY) return 0;
  return 1;
}

static void print_common(const char *mode, struct sample s0, struct sample s1, double wall) {
  printf("{\"mode\":\"%s\",\"seconds\":%.6f,\"brokerCpuSeconds\":%.6f,\"brokerSystemCpuSeconds\":%.6f,\"loadgenCpuSeconds\":%.6f,\"loadgenCpuShare\":%.4f,\"errors\":%ld",
         mode, wall, s1.broker - s0.broker, s1.broker_system - s0.broker_system, s1.self - s0.self, (s1.self - s0.self) / (s1.wall - s0.wall), errors);
  if (errors) {
    printf(",\"lastError\":\"");
    for (const char *p = last_error; *p; p++) putchar(*p == '"' || *p == '\\' ? '\'' : *p);
    putchar('"');
  }
}

static void run_connect(void) {
  slots = calloc((size_t)opt_concurrency, sizeof *slots);
  slot_ticket = calloc((size_t)opt_concurrency, sizeof *slot_ticket);
  slot_ticket_len = calloc((size_t)opt_concurrency, sizeof *slot_ticket_len);
  if (opt_resume) {
    storm_phase = 0;
    for (int i = 0; i < opt_concurrency; i++) storm_next(i);
    if (run_until(storm_finished, 60) < 0) fail("warm-up connections did not finish");
    if (errors) fail("warm-up failed: %s", last_error);
  }
  storm_phase = 1;
  storm_started = storm_done = 0;
  storm_target = opt_connections;
  struct sample s0 = take_sample();
  for (int i = 0; i < opt_concurrency && storm_started < storm_target; i++) storm_next(i);
  if (run_until(storm_finished, 600) < 0) fail("connections did not finish");
  double wall = now_s() - s0.wall;
  /* The broker's side of the last closes: let it finish them inside the window. */
  run_until(NULL, 0.3);
  struct sample s1 = take_sample();
  print_common(opt_resume ? "resume" : "connect", s0, s1, wall);
  printf(",\"connections\":%ld,\"resumed\":%ld,\"perConnectBrokerUs\":%.3f,\"perConnectLoadgenUs\":%.3f,\"connectsPerSecond\":%.1f}\n", storm_done,
         storm_reused, storm_done ? (s1.broker - s0.broker) * 1e6 / storm_done : 0, storm_done ? (s1.self - s0.self) * 1e6 / storm_done : 0,
         storm_done / wall);
}

static void run_idle(void) {
  struct conn **conns = calloc((size_t)opt_connections, sizeof *conns);
  long rss0 = broker_rss_kb();
  struct sample s0 = take_sample();
  /* Opens connections C at a time: a new one whenever one is connected. */
  while (!idle_finished()) {
    while (idle_started < opt_connections && idle_started - idle_connected - errors < opt_concurrency) {
      conns[idle_started] = open_conn(ROLE_IDLE, (int)idle_started);
      idle_started++;
    }
    poll_once(50);
  }
  double wall = now_s() - s0.wall;
  struct sample s1 = take_sample();
  fprintf(stderr, "loadgen: %ld connections open, holding %.1f s\n", idle_connected, opt_hold);
  run_until(NULL, opt_hold);
  long rss1 = broker_rss_kb();
  print_common("idle", s0, s1, wall);
  printf(",\"connections\":%ld,\"rssBeforeKb\":%ld,\"rssAfterKb\":%ld,\"perConnectionBytes\":%.1f,\"perConnectBrokerUs\":%.3f}\n", idle_connected,
         rss0, rss1, idle_connected ? (double)(rss1 - rss0) * 1024.0 / idle_connected : 0,
         idle_connected ? (s1.broker - s0.broker) * 1e6 / idle_connected : 0);
  fflush(stdout);
  /* Connections that failed were freed already; the others are closed politely. */
  for (long i = 0; i < idle_started; i++)
    if (conns[i] && conns[i]->state == ST_READY) close_conn(conns[i]);
}

static void run_pubsub(void) {
  pairs = calloc((size_t)opt_pairs, sizeof *pairs);
  for (int i = 0; i < opt_pairs; i++) pairs[i].sub = open_conn(ROLE_SUB, i);
  if (run_until(subs_finished, 60) < 0) fail("subscribers did not get their SUBACK: %s", last_error);
  for (int i = 0; i < opt_pairs; i++) pairs[i].pub = open_conn(ROLE_PUB, i);
  if (run_until(pubs_finished, 60) < 0) fail("publishers did not connect: %s", last_error);
  for (int i = 0; i < opt_pairs; i++) pubsub_refill(&pairs[i]);
  run_until(NULL, opt_warmup);
  window_delivered = 0;
  measuring = 1;
  struct sample s0 = take_sample();
  run_until(NULL, opt_seconds);
  struct sample s1 = take_sample();
  measuring = 0;
  double wall = s1.wall - s0.wall;
  print_common("pubsub", s0, s1, wall);
  printf(",\"qos\":%d,\"pairs\":%d,\"window\":%d,\"payloadBytes\":%d,\"delivered\":%llu,\"messagesPerSecond\":%.1f,\"perMessageBrokerUs\":%.4f,\"perMessageLoadgenUs\":%.4f}\n",
         opt_qos, opt_pairs, opt_window, opt_payload, (unsigned long long)window_delivered, window_delivered / wall,
         window_delivered ? (s1.broker - s0.broker) * 1e6 / window_delivered : 0, window_delivered ? (s1.self - s0.self) * 1e6 / window_delivered : 0);
  for (int i = 0; i < opt_pairs; i++) {
    close_conn(pairs[i].pub);
    close_conn(pairs[i].sub);
  }
}

static double percentile(uint64_t total, double q) {
  uint64_t rank = (uint64_t)(q * (double)total);
  if (rank >= total) rank = total - 1;
  uint64_t seen = 0;
  for (int us = 0; us < HIST_US; us++) {
    seen += hist[us];
    if (seen > rank) return us;
  }
  return HIST_US;
}

static void run_fanout(void) {
  hist = calloc(HIST_US, sizeof *hist);
  fan_subs = calloc((size_t)opt_subscribers, sizeof *fan_subs);
  for (int i = 0; i < opt_subscribers; i++) fan_subs[i] = open_conn(ROLE_SUB, i);
  if (run_until(subs_finished, 60) < 0) fail("subscribers did not get their SUBACK: %s", last_error);
  fan_pub = open_conn(ROLE_PUB, 0);
  if (run_until(pubs_finished, 60) < 0) fail("the publisher did not connect: %s", last_error);
  timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  struct itimerspec every = {.it_interval = {0, 200000}, .it_value = {0, 200000}};
  timerfd_settime(timer_fd, 0, &every, NULL);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &timer_marker};
  epoll_ctl(ep, EPOLL_CTL_ADD, timer_fd, &ev);
  fan_started = now_s();
  run_until(NULL, opt_warmup);
  window_delivered = window_sent = 0;
  measuring = 1;
  struct sample s0 = take_sample();
  run_until(NULL, opt_seconds);
  struct sample s1 = take_sample();
  measuring = 0;
  double wall = s1.wall - s0.wall;
  uint64_t total = 0;
  for (int us = 0; us < HIST_US; us++) total += hist[us];
  print_common("fanout", s0, s1, wall);
  printf(",\"subscribers\":%d,\"rate\":%.1f,\"published\":%llu,\"delivered\":%llu,\"deliveriesPerSecond\":%.1f,\"perDeliveryBrokerUs\":%.4f,"
         "\"p50Us\":%.0f,\"p99Us\":%.0f,\"p999Us\":%.0f}\n",
         opt_subscribers, opt_rate, (unsigned long long)window_sent, (unsigned long long)window_delivered, window_delivered / wall,
         window_delivered ? (s1.broker - s0.broker) * 1e6 / window_delivered : 0, total ? percentile(total, 0.5) : 0, total ? percentile(total, 0.99) : 0,
         total ? percentile(total, 0.999) : 0);
  for (int i = 0; i < opt_subscribers; i++) close_conn(fan_subs[i]);
  close_conn(fan_pub);
}

/* ---- main ---- */

static void usage(void) {
  fprintf(stderr,
          "usage: loadgen connect|idle|pubsub|fanout --port N --ca FILE --cert FILE --key FILE [--pid BROKER_PID]\n"
          "  [--host 127.0.0.1] [--mqtt 4|5] [--connections N] [--concurrency C] [--resume] [--hold S]\n"
          "  [--pairs P] [--qos 0|1] [--payload BYTES] [--window W] [--subscribers S] [--rate R] [--warmup S] [--seconds S]\n");
  exit(2);
}

int main(int argc, char **argv) {
  if (argc < 2) usage();
  if (!strcmp(argv[1], "connect")) opt_mode = MODE_CONNECT;
  else if (!strcmp(argv[1], "idle")) opt_mode = MODE_IDLE;
  else if (!strcmp(argv[1], "pubsub")) opt_mode = MODE_PUBSUB;
  else if (!strcmp(argv[1], "fanout")) opt_mode = MODE_FANOUT;
  else usage();
  static const struct option options[] = {
      {"host", 1, 0, 'h'},        {"port", 1, 0, 'p'},    {"ca", 1, 0, 'a'},          {"cert", 1, 0, 'c'},    {"key", 1, 0, 'k'},
      {"pid", 1, 0, 'P'},         {"connections", 1, 0, 'n'}, {"concurrency", 1, 0, 'C'}, {"resume", 0, 0, 'r'}, {"hold", 1, 0, 'H'},
      {"pairs", 1, 0, 'x'},       {"qos", 1, 0, 'q'},     {"payload", 1, 0, 'l'},     {"window", 1, 0, 'w'},  {"subscribers", 1, 0, 's'},
      {"rate", 1, 0, 'R'},        {"warmup", 1, 0, 'W'},  {"seconds", 1, 0, 'S'},     {"mqtt", 1, 0, 'm'},    {0, 0, 0, 0},
  };
  int opt;
  optind = 2;
  while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
    switch (opt) {
      case 'h': opt_host = optarg; break;
      case 'p': opt_port = atoi(optarg); break;
      case 'a': opt_ca = optarg; break;
      case 'c': opt_cert = optarg; break;
      case 'k': opt_key = optarg; break;
      case 'P': opt_pid = atoi(optarg); break;
      case 'n': opt_connections = atoi(optarg); break;
      case 'C': opt_concurrency = atoi(optarg); break;
      case 'r': opt_resume = 1; break;
      case 'H': opt_hold = atof(optarg); break;
      case 'x': opt_pairs = atoi(optarg); break;
      case 'q': opt_qos = atoi(optarg); break;
      case 'l': opt_payload = atoi(optarg); break;
      case 'w': opt_window = atoi(optarg); break;
      case 's': opt_subscribers = atoi(optarg); break;
      case 'R': opt_rate = atof(optarg); break;
      case 'W': opt_warmup = atof(optarg); break;
      case 'S': opt_seconds = atof(optarg); break;
      case 'm': opt_mqtt = atoi(optarg); break;
      default: usage();
    }
  }
  if (!opt_port || !opt_ca || !opt_cert || !opt_key || (opt_mqtt != 4 && opt_mqtt != 5) || opt_qos < 0 || opt_qos > 1 || opt_concurrency < 1 ||
      opt_connections < 1 || opt_window < 1 || opt_payload < 16)
    usage();

  signal(SIGPIPE, SIG_IGN);
  struct rlimit nofile;
  getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  setrlimit(RLIMIT_NOFILE, &nofile);

  ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  if (SSL_CTX_load_verify_locations(ctx, opt_ca, NULL) != 1) fail("cannot load %s", opt_ca);
  if (SSL_CTX_use_certificate_chain_file(ctx, opt_cert) != 1) fail("cannot load %s", opt_cert);
  if (SSL_CTX_use_PrivateKey_file(ctx, opt_key, SSL_FILETYPE_PEM) != 1) fail("cannot load %s", opt_key);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  /* One read() takes every record that has arrived, instead of two per record. */
  SSL_CTX_set_read_ahead(ctx, 1);
  /* Tickets come to new_session(); OpenSSL's own client cache stays out of the way. */
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, new_session);

  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) fail("epoll_create1: %s", strerror(errno));

  switch (opt_mode) {
    case MODE_CONNECT: run_connect(); break;
    case MODE_IDLE: run_idle(); break;
    case MODE_PUBSUB: run_pubsub(); break;
    case MODE_FANOUT: run_fanout(); break;
  }
  fflush(stdout);
  return 0;
}
