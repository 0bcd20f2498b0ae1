#include "sandbox/init_protocol.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace osb::sandbox {

WireWriter& WireWriter::Str(const std::string& s) {
  uint32_t n = static_cast<uint32_t>(s.size());
  for (int i = 0; i < 4; ++i) buf_.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  buf_ += s;
  return *this;
}

char WireReader::Tag() { return pos_ < data_.size() ? data_[pos_++] : '\0'; }

std::optional<std::string> WireReader::Str() {
  if (data_.size() - pos_ < 4) return std::nullopt;
  uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n |= static_cast<uint32_t>(static_cast<unsigned char>(data_[pos_ + i])) << (8 * i);
  pos_ += 4;
  if (data_.size() - pos_ < n) return std::nullopt;
  std::string s = data_.substr(pos_, n);
  pos_ += n;
  return s;
}

std::optional<int64_t> WireReader::Num() {
  auto s = Str();
  if (!s || s->empty() || s->size() > 19) return std::nullopt;
  int64_t v = 0;
  size_t i = 0;
  bool neg = (*s)[0] == '-';
  if (neg) i = 1;
  for (; i < s->size(); ++i) {
    if ((*s)[i] < '0' || (*s)[i] > '9') return std::nullopt;
    v = v * 10 + ((*s)[i] - '0');
  }
  return neg ? -v : v;
}

namespace {

void PutMap(WireWriter& w, const std::map<std::string, std::string>& m) {
  w.Num(static_cast<int64_t>(m.size()));
  for (const auto& [k, v] : m) w.Str(k).Str(v);
}

bool GetMap(WireReader& r, std::map<std::string, std::string>* m) {
  auto n = r.Num();
  if (!n || *n < 0) return false;
  for (int64_t i = 0; i < *n; ++i) {
    auto k = r.Str();
    auto v = r.Str();
    if (!k || !v) return false;
    (*m)[*k] = *v;
  }
  return true;
}

Error Malformed(const char* what) { return MakeError(ErrorCode::kInternal, std::string("malformed ") + what + " message"); }

}  // namespace

std::string EncodeSetup(const SetupMessage& m) {
  WireWriter w('P');
  w.Str(m.rootfs.stagingDir).Str(m.rootfs.templateDir).Num(static_cast<int64_t>(m.rootfs.tmpfsBytes));
  w.Num(m.rootfs.uid).Num(m.rootfs.gid).Num(static_cast<int64_t>(m.rootfs.files.size()));
  for (const auto& f : m.rootfs.files) w.Str(f.path).Str(f.content).Num(f.mode);
  w.Str(m.hostname).Str(m.controlSocketPath);
  PutMap(w, m.baseEnv);
  w.Num(static_cast<int64_t>(m.rootfs.hiddenPaths.size()));
  for (const auto& h : m.rootfs.hiddenPaths) w.Str(h);
  w.Num(m.rootfs.overlayRoot ? 1 : 0).Str(m.rootfs.workingDir);
  return w.data();
}

Result<SetupMessage> DecodeSetup(const std::string& data) {
  WireReader r(data);
  if (r.Tag() != 'P') return Malformed("setup");
  SetupMessage m;
  auto staging = r.Str(), tmpl = r.Str();
  auto tmpfs = r.Num(), uid = r.Num(), gid = r.Num(), nfiles = r.Num();
  if (!staging || !tmpl || !tmpfs || !uid || !gid || !nfiles || *nfiles < 0) return Malformed("setup");
  m.rootfs.stagingDir = *staging;
  m.rootfs.templateDir = *tmpl;
  m.rootfs.tmpfsBytes = static_cast<uint64_t>(*tmpfs);
  m.rootfs.uid = static_cast<uid_t>(*uid);
  m.rootfs.gid = static_cast<gid_t>(*gid);
  for (int64_t i = 0; i < *nfiles; ++i) {
    auto p = r.Str(), c = r.Str();
    auto mode = r.Num();
    if (!p || !c || !mode) return Malformed("setup");
    m.rootfs.files.push_back({*p, *c, static_cast<mode_t>(*mode)});
  }
  auto host = r.Str(), ctl = r.Str();
  if (!host || !ctl || !GetMap(r, &m.baseEnv)) return Malformed("setup");
  m.hostname = *host;
  m.controlSocketPath = *ctl;
  auto nHidden = r.Num();
  if (!nHidden || *nHidden < 0) return Malformed("setup");
  for (int64_t i = 0; i < *nHidden; ++i) {
    auto h = r.Str();
    if (!h) return Malformed("setup");
    m.rootfs.hiddenPaths.push_back(*h);
  }
  auto overlay = r.Num();
  auto cwd = r.Str();
  if (!overlay || !cwd) return Malformed("setup");
  m.rootfs.overlayRoot = *overlay == 1;
  m.rootfs.workingDir = *cwd;
  return m;
}

namespace {
void PutExec(WireWriter& w, const ExecMessage& m);
}  // namespace

std::string EncodeExec(const ExecMessage& m) {
  WireWriter w('E');
  PutExec(w, m);
  return w.data();
}

std::string EncodePtyExec(const PtyExecMessage& m) {
  WireWriter w('T');
  PutExec(w, m.exec);
  w.Num(m.cols).Num(m.rows);
  return w.data();
}

namespace {
void PutExec(WireWriter& w, const ExecMessage& m) {
  w.Str(m.cmd).Num(static_cast<int64_t>(m.args.size()));
  for (const auto& a : m.args) w.Str(a);
  PutMap(w, m.env);
  w.Str(m.cwd);
}

Result<ExecMessage> GetExec(WireReader& r) {
  ExecMessage m;
  auto cmd = r.Str();
  auto n = r.Num();
  if (!cmd || !n || *n < 0) return Malformed("exec");
  m.cmd = *cmd;
  for (int64_t i = 0; i < *n; ++i) {
    auto a = r.Str();
    if (!a) return Malformed("exec");
    m.args.push_back(*a);
  }
  auto ok = GetMap(r, &m.env);
  auto cwd = r.Str();
  if (!ok || !cwd) return Malformed("exec");
  m.cwd = *cwd;
  return m;
}
}  // namespace

Result<ExecMessage> DecodeExec(const std::string& data) {
  WireReader r(data);
  if (r.Tag() != 'E') return Malformed("exec");
  return GetExec(r);
}

Result<PtyExecMessage> DecodePtyExec(const std::string& data) {
  WireReader r(data);
  if (r.Tag() != 'T') return Malformed("pty exec");
  auto exec = GetExec(r);
  if (!exec) return exec.error();
  auto cols = r.Num();
  auto rows = r.Num();
  if (!cols || !rows || *cols < 1 || *cols > 1000 || *rows < 1 || *rows > 1000) return Malformed("pty exec");
  return PtyExecMessage{std::move(*exec), static_cast<uint16_t>(*cols), static_cast<uint16_t>(*rows)};
}

bool SendRecord(int sock, const std::string& data, const std::vector<int>& fds) {
  iovec iov{const_cast<char*>(data.data()), data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int) * 4)] = {};
  if (!fds.empty()) {
    if (fds.size() > 4) return false;
    msg.msg_control = ctrl;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  for (;;) {
    ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (n >= 0) return static_cast<size_t>(n) == data.size();
    if (errno != EINTR) return false;
  }
}

std::optional<std::string> RecvRecord(int sock, std::vector<int>* fds) {
  // Peek the record's size first so any size fits (bounded by the sender's
  // socket buffer).
  char probe;
  ssize_t size;
  do {
    size = recv(sock, &probe, 1, MSG_PEEK | MSG_TRUNC);
  } while (size < 0 && errno == EINTR);
  if (size <= 0) {
    if (size == 0) errno = 0;
    return std::nullopt;
  }
  std::string buf(static_cast<size_t>(size), '\0');
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int) * 8)] = {};
  msg.msg_control = ctrl;
  msg.msg_controllen = sizeof ctrl;
  ssize_t n;
  do {
    n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) {
    if (n == 0) errno = 0;
    return std::nullopt;
  }
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (fds) fds->push_back(fd);
      else close(fd);
    }
  }
  if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
    if (fds) {
      for (int fd : *fds) close(fd);
      fds->clear();
    }
    errno = EMSGSIZE;
    return std::nullopt;
  }
  buf.resize(static_cast<size_t>(n));
  return buf;
}

}  // namespace osb::sandbox
