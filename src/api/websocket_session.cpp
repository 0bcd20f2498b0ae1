#include "api/websocket_session.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <spdlog/spdlog.h>

#include <deque>
#include <thread>

namespace osb::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using asio::use_awaitable;

// The channel of one session, for a handler thread (WebSocketChannel) or an
// asynchronous handler (AsyncWebSocketChannel). State under mu_; the timers
// and cancel_io only on the session's strand. Asynchronous callbacks are
// posted to the strand, or run on the caller's thread once aborted (the io
// threads are gone then).
class WebSocketSessions::Entry final : public WebSocketChannel,
                                       public AsyncWebSocketChannel,
                                       public std::enable_shared_from_this<Entry> {
 public:
  using Executor = asio::any_io_executor;
  using SentFn = std::function<void(bool)>;
  using ReceiveFn = std::function<void(std::optional<WsMessage>)>;
  Entry(Executor ex, const WebSocketOptions& o, WebSocketSessions& sessions)
      : ex_(ex), write_wake_(ex), read_wake_(ex), done_wake_(ex), options_(o), sessions_(sessions) {}
  ~Entry() override {
    // An asynchronous handler that never said Done must not hang WaitIdle.
    if (async_ && !done_) sessions_.Done(this);
  }

  bool Send(WsMessage m) override {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return closing_ || out_bytes_ < options_.send_budget; });
    if (closing_) return false;
    out_bytes_ += m.data.size();
    out_.push_back(Out{std::move(m), nullptr});
    lock.unlock();
    Wake(write_wake_);
    return true;
  }

  std::optional<WsMessage> Receive() override {
    std::unique_lock lock(mu_);
    // Once the handler closes, nothing more is delivered.
    cv_.wait(lock, [&] { return broken_ || closing_ || !in_.empty(); });
    if (closing_ || in_.empty()) return std::nullopt;
    WsMessage m = std::move(in_.front());
    in_.pop_front();
    in_bytes_ -= m.data.size();
    lock.unlock();
    Wake(read_wake_);
    return m;
  }

  void AsyncReceive(ReceiveFn on_message) override {
    std::unique_lock lock(mu_);
    if (closing_ || (broken_ && in_.empty())) {
      const bool inline_call = aborted_;
      lock.unlock();
      Run(inline_call, [f = std::move(on_message)] { f(std::nullopt); });
      return;
    }
    if (in_.empty()) {
      receiver_ = std::move(on_message);
      return;
    }
    WsMessage m = std::move(in_.front());
    in_.pop_front();
    in_bytes_ -= m.data.size();
    lock.unlock();
    Wake(read_wake_);
    asio::post(ex_, [f = std::move(on_message), m = std::move(m)]() mutable { f(std::move(m)); });
  }

  void AsyncSend(WsMessage m, SentFn sent) override {
    std::unique_lock lock(mu_);
    if (closing_) {
      const bool inline_call = aborted_;
      lock.unlock();
      if (sent) Run(inline_call, [f = std::move(sent)] { f(false); });
      return;
    }
    // No wait here: the handler waits for `sent` before its next message,
    // so at most one message per handler is queued beyond the budget.
    out_bytes_ += m.data.size();
    out_.push_back(Out{std::move(m), std::move(sent)});
    lock.unlock();
    Wake(write_wake_);
  }

  void Done() override {
    {
      std::lock_guard lock(mu_);
      if (done_) return;
      done_ = true;
    }
    sessions_.Done(this);
  }

  void Close(uint16_t code, const std::string& reason) override {
    ReceiveFn receiver;
    bool inline_call;
    {
      std::lock_guard lock(mu_);
      if (closing_) return;
      closing_ = true;
      close_code_ = code;
      close_reason_ = reason.substr(0, 120);  // a close frame's payload is at most 125 bytes
      receiver = std::move(receiver_);
      inline_call = aborted_;
      cv_.notify_all();
    }
    if (receiver) Run(inline_call, [f = std::move(receiver)] { f(std::nullopt); });
    Wake(write_wake_);
  }

  void Abort() {
    ReceiveFn receiver;
    std::deque<Out> dropped;
    {
      std::lock_guard lock(mu_);
      closing_ = broken_ = aborted_ = true;
      receiver = std::move(receiver_);
      dropped.swap(out_);
      cv_.notify_all();
    }
    // The io threads are gone (or going): tell the handler here.
    if (receiver) receiver(std::nullopt);
    for (auto& o : dropped)
      if (o.sent) o.sent(false);
    asio::post(ex_, [self = shared_from_this()] {
      if (self->cancel_io) self->cancel_io();
      self->read_wake_.cancel();
      self->write_wake_.cancel();
    });
  }

  // ---- session side (strand) ----
  void StartAsync() {
    std::lock_guard lock(mu_);
    async_ = true;
  }
  void Push(WsMessage m) {
    ReceiveFn receiver;
    {
      std::lock_guard lock(mu_);
      if (receiver_) {
        receiver = std::move(receiver_);
      } else {
        in_bytes_ += m.data.size();
        in_.push_back(std::move(m));
        cv_.notify_all();
        return;
      }
    }
    asio::post(ex_, [f = std::move(receiver), m = std::move(m)]() mutable { f(std::move(m)); });
  }
  bool InboundFull() {
    std::lock_guard lock(mu_);
    return in_bytes_ >= options_.inbound_budget;
  }
  bool Broken() {
    std::lock_guard lock(mu_);
    return broken_;
  }
  void MarkBroken() {
    ReceiveFn receiver;
    std::deque<Out> dropped;
    {
      std::lock_guard lock(mu_);
      closing_ = broken_ = true;
      if (in_.empty()) receiver = std::move(receiver_);
      dropped.swap(out_);
      out_bytes_ = 0;
      cv_.notify_all();
    }
    if (receiver) asio::post(ex_, [f = std::move(receiver)] { f(std::nullopt); });
    for (auto& o : dropped)
      if (o.sent) asio::post(ex_, [f = std::move(o.sent)] { f(false); });
    write_wake_.cancel();
  }
  struct Next {
    std::optional<WsMessage> message;
    SentFn sent;
    bool close = false;  // send the close frame now
    bool stop = false;   // the connection is gone
    uint16_t code = 0;
    std::string reason;
  };
  Next PopOutbound() {
    std::lock_guard lock(mu_);
    Next n;
    if (broken_) {
      n.stop = true;
    } else if (!out_.empty()) {
      n.message = std::move(out_.front().message);
      n.sent = std::move(out_.front().sent);
      out_.pop_front();
    } else if (closing_) {
      n.close = true;
      n.code = close_code_;
      n.reason = close_reason_;
    }
    return n;
  }
  void Sent(size_t n) {
    std::lock_guard lock(mu_);
    out_bytes_ -= std::min(out_bytes_, n);
    cv_.notify_all();
  }

  Executor ex_;
  asio::steady_timer write_wake_;
  asio::steady_timer read_wake_;
  asio::steady_timer done_wake_;
  std::function<void()> cancel_io;

 private:
  struct Out {
    WsMessage message;
    SentFn sent;
  };
  void Wake(asio::steady_timer& t) {
    asio::post(ex_, [self = shared_from_this(), &t] { t.cancel(); });
  }
  void Run(bool inline_call, std::function<void()> f) {
    if (inline_call) f();
    else asio::post(ex_, std::move(f));
  }

  const WebSocketOptions options_;
  WebSocketSessions& sessions_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<WsMessage> in_;
  size_t in_bytes_ = 0;
  std::deque<Out> out_;
  size_t out_bytes_ = 0;
  ReceiveFn receiver_;    // an asynchronous receive waiting for a message
  bool closing_ = false;  // no more Sends; a close frame follows the queue
  bool broken_ = false;   // the connection is over
  bool aborted_ = false;  // AbortAll: callbacks run on the caller's thread
  bool async_ = false;
  bool done_ = false;
  uint16_t close_code_ = kWsNormalClose;
  std::string close_reason_;
};

void WebSocketSessions::Add(const std::shared_ptr<Entry>& e) {
  std::lock_guard lock(mu_);
  std::erase_if(live_, [](const std::weak_ptr<Entry>& w) { return w.expired(); });
  live_.push_back(e);
  ++threads_;
}

void WebSocketSessions::Done(const Entry*) {
  std::lock_guard lock(mu_);
  --threads_;
  cv_.notify_all();
}

void WebSocketSessions::CloseAll() {
  std::vector<std::shared_ptr<Entry>> live;
  {
    std::lock_guard lock(mu_);
    for (auto& w : live_)
      if (auto e = w.lock()) live.push_back(e);
  }
  for (auto& e : live) e->Close(kWsGoingAway, "server shutting down");
}

void WebSocketSessions::AbortAll() {
  std::vector<std::shared_ptr<Entry>> live;
  {
    std::lock_guard lock(mu_);
    for (auto& w : live_)
      if (auto e = w.lock()) live.push_back(e);
  }
  for (auto& e : live) e->Abort();
}

void WebSocketSessions::WaitIdle() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return threads_ == 0; });
}

namespace {

template <class Ws>
asio::awaitable<void> WriteLoop(Ws& ws, std::shared_ptr<WebSocketSessions::Entry> entry) {
  boost::system::error_code ec;
  for (;;) {
    auto next = entry->PopOutbound();
    if (next.stop) co_return;
    if (next.message) {
      ws.binary(next.message->binary);
      const size_t n = next.message->data.size();
      auto write = ws.async_write(asio::buffer(next.message->data), asio::redirect_error(use_awaitable, ec));
      co_await std::move(write);
      entry->Sent(n);
      if (next.sent) next.sent(!ec);
      if (ec) {
        entry->MarkBroken();
        co_return;
      }
      continue;
    }
    if (next.close) {
      auto close = ws.async_close(websocket::close_reason(static_cast<websocket::close_code>(next.code), next.reason),
                                  asio::redirect_error(use_awaitable, ec));
      co_await std::move(close);
      co_return;
    }
    entry->write_wake_.expires_at(asio::steady_timer::time_point::max());
    auto wait = entry->write_wake_.async_wait(asio::redirect_error(use_awaitable, ec));
    co_await std::move(wait);
  }
}

template <class Next>
asio::awaitable<int> Serve(Next& next, beast::http::request<beast::http::string_body> request,
                           WebSocketHandler handler, const WebSocketOptions& options,
                           WebSocketSessions& sessions) {
  beast::get_lowest_layer(next).expires_never();
  websocket::stream<Next&> ws(next);
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = options.handshake_timeout;
  timeouts.idle_timeout = options.idle_timeout;
  timeouts.keep_alive_pings = true;
  ws.set_option(timeouts);
  ws.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(beast::http::field::server, "osb"); }));
  ws.read_message_max(options.max_message);
  boost::system::error_code ec;
  auto accept = ws.async_accept(request, asio::redirect_error(use_awaitable, ec));
  co_await std::move(accept);
  if (ec) co_return 0;

  auto ex = co_await asio::this_coro::executor;
  auto entry = std::make_shared<WebSocketSessions::Entry>(ex, options, sessions);
  entry->cancel_io = [&ws] {
    boost::system::error_code ignored;
    beast::get_lowest_layer(ws).socket().close(ignored);
  };
  sessions.Add(entry);
  if (handler.async) {
    // No thread: the handler starts its work here and continues from the
    // channel's callbacks.
    entry->StartAsync();
    try {
      handler.async(entry);
    } catch (const std::exception& e) {
      spdlog::error("websocket handler failed: {}", e.what());
      entry->Close(kWsInternalError, "internal error");
      entry->Done();
    }
  } else {
    std::thread([handler = std::move(handler.blocking), entry, &sessions] {
      try {
        handler(entry);
      } catch (const std::exception& e) {
        spdlog::error("websocket handler failed: {}", e.what());
        entry->Close(kWsInternalError, "internal error");
      }
      entry->Close(kWsNormalClose, "");
      sessions.Done(entry.get());
    }).detach();
  }

  bool writer_done = false;
  asio::co_spawn(ex, WriteLoop(ws, entry), [entry, &writer_done](std::exception_ptr) {
    writer_done = true;
    entry->done_wake_.cancel();
    entry->read_wake_.cancel();
  });

  beast::flat_buffer buffer;
  int code = 0;
  for (;;) {
    if (entry->Broken()) break;
    if (entry->InboundFull()) {
      if (writer_done) break;  // closed by us and nobody drains any more
      entry->read_wake_.expires_at(asio::steady_timer::time_point::max());
      auto wait = entry->read_wake_.async_wait(asio::redirect_error(use_awaitable, ec));
      co_await std::move(wait);
      continue;
    }
    auto read = ws.async_read(buffer, asio::redirect_error(use_awaitable, ec));
    co_await std::move(read);
    if (ec) {
      if (ec == websocket::error::closed) code = ws.reason().code;
      else if (ec == websocket::error::message_too_big) code = kWsTooBig;
      break;
    }
    entry->Push(WsMessage{ws.got_binary(), beast::buffers_to_string(buffer.data())});
    buffer.consume(buffer.size());
  }
  entry->MarkBroken();
  while (!writer_done) {
    entry->done_wake_.expires_at(asio::steady_timer::time_point::max());
    auto wait = entry->done_wake_.async_wait(asio::redirect_error(use_awaitable, ec));
    co_await std::move(wait);
  }
  entry->cancel_io = nullptr;
  co_return code;
}

}  // namespace

asio::awaitable<int> ServeWebSocket(PlainStream& stream, beast::http::request<beast::http::string_body> request,
                                    WebSocketHandler handler, const WebSocketOptions& options,
                                    WebSocketSessions& sessions) {
  int code = co_await Serve(stream, std::move(request), std::move(handler), options, sessions);
  co_return code;
}

asio::awaitable<int> ServeWebSocket(TlsStream& stream, beast::http::request<beast::http::string_body> request,
                                    WebSocketHandler handler, const WebSocketOptions& options,
                                    WebSocketSessions& sessions) {
  int code = co_await Serve(stream, std::move(request), std::move(handler), options, sessions);
  co_return code;
}

}  // namespace osb::api
