// TLS load generator: N keep-alive connections, each sending small requests
// back to back for S seconds, directly or through an explicit proxy
// (CONNECT). Prints JSON {requests, seconds, rps, p50_us, p99_us, errors,
// conns, client_cpu_us_per_req}.
// Usage: bench_client --connect HOST:PORT [--proxy HOST:PORT] --sni NAME
//        --port P --ca FILE [--conns N] [--seconds S] [--token T]
//        [--request-file F]   (send F's bytes, a complete request, instead)
#include <openssl/ssl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench_net.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string connect, proxy, sni, tunnel_host, ca, token = "osb_sealed_0123456789abcdef0123456789abcdef";
  std::string request_file;
  int port = 443, conns = 4;
  double seconds = 5;
};

SSL* Open(SSL_CTX* ctx, const Options& o) {
  int fd = osb::bench::DialTcp(o.proxy.empty() ? o.connect : o.proxy);
  if (fd < 0) return nullptr;
  if (!o.proxy.empty()) {
    const std::string th = o.tunnel_host.empty() ? o.sni : o.tunnel_host;
    const std::string req = "CONNECT " + th + ":" + std::to_string(o.port) + " HTTP/1.1\r\nHost: " + th + ":" +
                            std::to_string(o.port) + "\r\n\r\n";
    if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) return nullptr;
    std::string resp;
    char c;
    while (resp.find("\r\n\r\n") == std::string::npos && read(fd, &c, 1) == 1) resp += c;
    if (resp.compare(0, 12, "HTTP/1.1 200") != 0) {
      close(fd);
      return nullptr;
    }
  }
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  SSL_set_tlsext_host_name(ssl, o.sni.c_str());
  SSL_set1_host(ssl, o.sni.c_str());
  if (SSL_connect(ssl) != 1) {
    SSL_free(ssl);
    close(fd);
    return nullptr;
  }
  return ssl;
}

// One request/response; false on error.
bool Exchange(SSL* ssl, const std::string& req, std::string& buf) {
  if (SSL_write(ssl, req.data(), static_cast<int>(req.size())) <= 0) return false;
  char tmp[16384];
  while (true) {
    const size_t end = buf.find("\r\n\r\n");
    if (end != std::string::npos) {
      size_t cl = 0;
      const size_t p = buf.find("Content-Length: ");
      if (p != std::string::npos && p < end) cl = std::stoul(buf.substr(p + 16));
      if (buf.size() >= end + 4 + cl) {
        buf.erase(0, end + 4 + cl);
        return true;
      }
    }
    const int n = SSL_read(ssl, tmp, sizeof(tmp));
    if (n <= 0) return false;
    buf.append(tmp, static_cast<size_t>(n));
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--connect") o.connect = v;
    else if (k == "--proxy") o.proxy = v;
    else if (k == "--sni") o.sni = v;
    else if (k == "--port") o.port = std::stoi(v);
    else if (k == "--ca") o.ca = v;
    else if (k == "--conns") o.conns = std::stoi(v);
    else if (k == "--seconds") o.seconds = std::stod(v);
    else if (k == "--token") o.token = v;
    else if (k == "--tunnel-host") o.tunnel_host = v;
    else if (k == "--request-file") o.request_file = v;  // CONNECT authority when it differs from the SNI
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_load_verify_locations(ctx, o.ca.c_str(), nullptr);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  std::string req = "GET /small?k=" + o.token + " HTTP/1.1\r\nHost: " + o.sni + ":" + std::to_string(o.port) +
                    "\r\nAuthorization: Bearer " + o.token + "\r\nUser-Agent: osb-bench\r\n\r\n";
  if (!o.request_file.empty()) {
    std::ifstream f(o.request_file, std::ios::binary);
    req.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  std::mutex mu;
  std::vector<double> lat;
  std::atomic<uint64_t> errors{0};
  const auto deadline = Clock::now() + std::chrono::duration<double>(o.seconds);
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (int c = 0; c < o.conns; ++c) {
    threads.emplace_back([&] {
      std::vector<double> mine;
      SSL* ssl = Open(ctx, o);
      std::string buf;
      while (ssl && Clock::now() < deadline) {
        const auto t0 = Clock::now();
        if (!Exchange(ssl, req, buf)) {
          errors++;
          break;
        }
        mine.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
      if (!ssl) errors++;
      if (ssl) {
        close(SSL_get_fd(ssl));
        SSL_free(ssl);
      }
      std::lock_guard l(mu);
      lat.insert(lat.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) { return lat.empty() ? 0.0 : lat[std::min(lat.size() - 1, static_cast<size_t>(p * lat.size()))]; };
  nlohmann::json j;
  j["requests"] = lat.size();
  j["seconds"] = secs;
  j["rps"] = lat.size() / secs;
  j["p50_us"] = pct(0.50);
  j["p99_us"] = pct(0.99);
  j["errors"] = errors.load();
  j["conns"] = o.conns;
  // The client's own CPU per request: with the proxy's and the upstream's
  // (read by bench/run.sh) this shows where each request's CPU goes.
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const double cpu_us = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
  j["client_cpu_us_per_req"] = lat.empty() ? 0.0 : cpu_us / static_cast<double>(lat.size());
  std::cout << j.dump() << std::endl;
  return lat.empty() ? 1 : 0;
}
