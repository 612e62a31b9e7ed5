using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Security;
using System.Net.Sockets;
using Switch.Grpc.Http2.Hpack;

namespace Switch.Grpc.Http2;

/// <summary>Where and how an <see cref="Http2ClientConnection"/> connects, and what it advertises.</summary>
internal sealed record Http2ConnectionOptions(string Host, int Port, SslClientAuthenticationOptions? Tls, TimeSpan ConnectTimeout, int StreamReceiveWindowBytes)
{
    /// <summary>The connection-level receive window: many streams' responses in flight at once.</summary>
    public int ConnectionReceiveWindowBytes { get; init; } = 16 * 1024 * 1024;

    /// <summary>Streams waiting for a slot under the server's MAX_CONCURRENT_STREAMS; past it a start is refused.</summary>
    public int MaxWaitingStreams { get; init; } = 10_000;
}

/// <summary>What <see cref="Http2ClientConnection.TryStart"/> did with a stream.</summary>
internal enum Http2StartResult
{
    /// <summary>Sent, or waiting for a slot under the server's stream limit.</summary>
    Started,
    /// <summary>The connection is closed, going away or out of stream ids: use another.</summary>
    Unusable,
    /// <summary>Too many streams already wait for a slot.</summary>
    TooManyWaiting,
}

/// <summary>
/// A client HTTP/2 connection (RFC 7540) over TCP with prior knowledge, or TLS with ALPN h2. One reader loop reads frames
/// and dispatches them to streams by id; one writer loop writes what callers queued, in bursts with one flush each. Frames
/// are encoded under one lock straight into a pooled buffer, so nothing is allocated per frame. It honours the server's
/// MAX_CONCURRENT_STREAMS (a stream beyond waits, bounded), MAX_FRAME_SIZE and INITIAL_WINDOW_SIZE, its send windows for
/// request DATA, and replenishes its own receive windows in batches (a WINDOW_UPDATE once half a window is consumed).
/// Mechanism only: what the headers and body mean is the <see cref="Http2Stream"/>'s business.
/// </summary>
internal sealed class Http2ClientConnection : IDisposable
{
    /// <summary>Bytes read per socket read; two largest frames fit, so a frame never straddles a compaction twice.</summary>
    private const int ReadBufferBytes = 64 * 1024;

    /// <summary>The largest frame payload accepted: we never advertise a larger SETTINGS_MAX_FRAME_SIZE.</summary>
    private const int MaxReceiveFrameBytes = Http2Limits.DefaultMaxFrameBytes;

    private const int HeaderTableBytes = 4096;
    private const int MaxHeaderListBytes = 64 * 1024;

    /// <summary>A header block (HEADERS and its CONTINUATIONs) longer than this ends the connection: it cannot be skipped.</summary>
    private const int MaxHeaderBlockBytes = 2 * MaxHeaderListBytes;

    /// <summary>Request DATA queued for one burst at most: a body bigger than the windows allow goes in bursts of this,
    /// each after the last is written, however large the server's windows (the burst buffer stays bounded).</summary>
    private const int MaxQueuedDataBytes = 4 * 1024 * 1024;

    /// <summary>The last odd stream id: the connection stops taking streams before it.</summary>
    private const int MaxStreamId = int.MaxValue;

    private readonly object _lock = new();
    private readonly Stream _transport;
    private readonly Http2ConnectionOptions _options;
    private readonly Dictionary<int, Http2Stream> _active = new();
    private readonly List<Http2Stream> _waiting = new();
    private readonly List<Http2Stream> _awaitingWindow = new();
    private readonly WakeSignal _wakeup = new(continueInline: false); // The writer resumes on the pool, never on a caller's thread.
    private readonly HpackDecoder _decoder = new(HeaderTableBytes, MaxHeaderListBytes);
    private readonly TaskCompletionSource _settingsReceived = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Http2FrameBuffer _pending = new();
    private Http2FrameBuffer _writing = new();
    private List<Http2Stream> _pendingNotices = new(); // streams told once _pending is written (WantsWrittenNotice)
    private List<Http2Stream> _writingNotices = new();
    private long _pendingBurst; // the number of the burst _pending will be
    private int _nextStreamId = 1;
    private int _peerMaxConcurrentStreams = int.MaxValue; // until its SETTINGS: ConnectAsync waits for them
    private int _peerMaxFrameBytes = Http2Limits.DefaultMaxFrameBytes;
    private int _peerInitialWindowBytes = Http2Limits.DefaultWindowBytes;
    private long _sendWindowBytes = Http2Limits.DefaultWindowBytes;
    private long _receiveWindowBytes;
    private int _receiveUnackedBytes;
    private bool _goingAway;
    private Exception? _failure; // set once: the connection is over

    // The reader's header block in progress (only the reader touches these).
    private byte[] _headerBlock = ArrayPool<byte>.Shared.Rent(4096);
    private int _headerBlockBytes;
    private int _headerStreamId;
    private bool _headerEndStream;

    private Task _readLoop = Task.CompletedTask;
    private Task _writeLoop = Task.CompletedTask;

    private Http2ClientConnection(Stream transport, Http2ConnectionOptions options)
    {
        _transport = transport;
        _options = options;
        _receiveWindowBytes = options.ConnectionReceiveWindowBytes;
        _pending.WritePreface();
        _pending.WriteSettings([
            (Http2Setting.EnablePush, 0u),
            (Http2Setting.InitialWindowSize, (uint)options.StreamReceiveWindowBytes),
            (Http2Setting.MaxHeaderListSize, (uint)MaxHeaderListBytes),
        ]);
        if (options.ConnectionReceiveWindowBytes > Http2Limits.DefaultWindowBytes)
            _pending.WriteWindowUpdate(0, options.ConnectionReceiveWindowBytes - Http2Limits.DefaultWindowBytes);
    }

    /// <summary>Connects, sends the preface and SETTINGS, and returns once the server's SETTINGS arrived (so its stream
    /// limit is known before the first stream). A connection not made is an HttpRequestException (ConnectionError,
    /// NameResolutionError, or SecureConnectionError with the AuthenticationException inside); no SETTINGS, an IOException.</summary>
    public static async Task<Http2ClientConnection> ConnectAsync(Http2ConnectionOptions options, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.ConnectTimeout);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Stream transport;
        try
        {
            await socket.ConnectAsync(options.Host, options.Port, timeout.Token).ConfigureAwait(false);
            transport = new NetworkStream(socket, ownsSocket: true);
            if (options.Tls is { } tls)
            {
                var ssl = new SslStream(transport, leaveInnerStreamOpen: false);
                transport = ssl;
                await ssl.AuthenticateAsClientAsync(tls, timeout.Token).ConfigureAwait(false);
                if (ssl.NegotiatedApplicationProtocol != SslApplicationProtocol.Http2)
                    throw new IOException("The server did not agree to HTTP/2 (ALPN h2).");
            }
        }
        catch (Exception e)
        {
            socket.Dispose();
            // As HttpClient reports it, so a caller that tells "never connected" from "lost on the way" still can.
            HttpRequestError kind = e switch
            {
                SocketException { SocketErrorCode: SocketError.HostNotFound or SocketError.NoData or SocketError.TryAgain } => HttpRequestError.NameResolutionError,
                System.Security.Authentication.AuthenticationException => HttpRequestError.SecureConnectionError,
                _ => HttpRequestError.ConnectionError,
            };
            throw new HttpRequestException(kind, $"Connecting to {options.Host}:{options.Port} failed: {e.Message}", e);
        }
        var connection = new Http2ClientConnection(transport, options);
        connection._readLoop = Task.Run(connection.ReadLoopAsync, CancellationToken.None);
        connection._writeLoop = Task.Run(connection.WriteLoopAsync, CancellationToken.None);
        try
        {
            await connection._settingsReceived.Task.WaitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            connection.Dispose();
            throw new IOException($"Connecting to {options.Host}:{options.Port} failed: no HTTP/2 SETTINGS from the server ({e.Message})", e);
        }
        return connection;
    }

    /// <summary>Takes new streams: not closed, not going away, stream ids left.</summary>
    public bool IsUsable
    {
        get { lock (_lock) return IsUsableLocked; }
    }

    /// <summary>The connection is over (failed or disposed): it can be forgotten.</summary>
    public bool IsClosed => Volatile.Read(ref _failure) is not null;

    /// <summary>A stream started now would not wait for a slot.</summary>
    public bool HasFreeSlot
    {
        get { lock (_lock) return IsUsableLocked && _waiting.Count == 0 && _active.Count < _peerMaxConcurrentStreams; }
    }

    private bool IsUsableLocked => _failure is null && !_goingAway && _nextStreamId < MaxStreamId;

    /// <summary>Sends the stream's request, or queues it until a slot under the server's stream limit frees.</summary>
    public Http2StartResult TryStart(Http2Stream stream)
    {
        lock (_lock)
        {
            if (!IsUsableLocked) return Http2StartResult.Unusable;
            Debug.Assert(stream.Connection is null);
            stream.ResetTransportState();
            if (_waiting.Count == 0 && _active.Count < _peerMaxConcurrentStreams)
            {
                stream.Connection = this;
                OpenLocked(stream);
                return Http2StartResult.Started;
            }
            if (_waiting.Count >= _options.MaxWaitingStreams) return Http2StartResult.TooManyWaiting;
            stream.Connection = this;
            _waiting.Add(stream);
            return Http2StartResult.Started;
        }
    }

    /// <summary>Ends the stream from our side: RST_STREAM CANCEL if it was sent, and <see cref="Http2Stream.OnClosed"/>
    /// (ResetLocally, <paramref name="reason"/>). False if the stream had already ended (its OnClosed was called before).</summary>
    public bool Reset(Http2Stream stream, object? reason)
    {
        lock (_lock)
        {
            if (stream.Connection != this) return false;
            ResetLocked(stream, reason);
            return true;
        }
    }

    private void ResetLocked(Http2Stream stream, object? reason, uint errorCode = Http2ErrorCode.Cancel)
    {
        if (stream.StreamId != 0 && _failure is null)
        {
            _pending.WriteRstStream(stream.StreamId, errorCode);
            _wakeup.Wake();
        }
        CloseLocked(stream, Http2StreamEnd.ResetLocally, errorCode, reason);
    }

    /// <summary>Sends what the stream queued since (<see cref="Http2Stream.TakeStagedBody"/>), as the windows allow; the
    /// rest goes as WINDOW_UPDATEs come (<see cref="Http2Stream.OnRequestBodyWritten"/> says when all was written). False if the
    /// stream is no longer on this connection (it ended: its OnClosed was called).</summary>
    public bool Send(Http2Stream stream)
    {
        lock (_lock)
        {
            if (stream.Connection != this) return false;
            stream.TakeStagedBody();
            // A stream still waiting for a slot sends its body when it opens; one waiting for window, when it comes.
            if (stream.StreamId != 0 && !stream.AwaitingWindow)
            {
                SendBodyLocked(stream);
                _wakeup.Wake();
            }
            return true;
        }
    }

    /// <summary>The stream's reader consumed <paramref name="bytes"/> of its response: its window is granted back to the
    /// server in batches (a WINDOW_UPDATE once half the window was consumed). For streams that
    /// <see cref="Http2Stream.GrantsWindowOnConsume"/>.</summary>
    public void Consumed(Http2Stream stream, int bytes)
    {
        Debug.Assert(stream.GrantsWindowOnConsume && bytes >= 0);
        lock (_lock)
        {
            if (stream.Connection != this || stream.StreamId == 0) return; // over: nothing more comes
            GrantLocked(stream, bytes);
        }
    }

    private void GrantLocked(Http2Stream stream, int bytes)
    {
        stream.ReceiveUnackedBytes += bytes;
        if (stream.ReceiveUnackedBytes < _options.StreamReceiveWindowBytes / 2) return;
        _pending.WriteWindowUpdate(stream.StreamId, stream.ReceiveUnackedBytes);
        stream.ReceiveWindowBytes += stream.ReceiveUnackedBytes;
        stream.ReceiveUnackedBytes = 0;
        _wakeup.Wake();
    }

    private void OpenLocked(Http2Stream stream)
    {
        int id = _nextStreamId;
        _nextStreamId += 2;
        stream.StreamId = id;
        stream.SendWindowBytes = _peerInitialWindowBytes;
        stream.ReceiveWindowBytes = _options.StreamReceiveWindowBytes;
        _active.Add(id, stream);
        bool endWithHeaders = stream.RequestBody.IsEmpty && stream.RequestBodyEnded;
        _pending.WriteHeaders(id, stream.RequestHeaderBlock.Span, endWithHeaders, _peerMaxFrameBytes);
        stream.EndStreamSent = endWithHeaders;
        if (!endWithHeaders) SendBodyLocked(stream);
        _wakeup.Wake();
    }

    /// <summary>As much of the request body as both send windows and the burst allow; the rest waits for WINDOW_UPDATE or
    /// the burst's write. Whatever was queued goes in as few DATA frames as the peer's frame size allows.</summary>
    private void SendBodyLocked(Http2Stream stream)
    {
        ReadOnlySpan<byte> body = stream.RequestBody.Span;
        while (true)
        {
            if (stream.RequestBodySentBytes == body.Length)
            {
                if (stream.RequestBodyEnded && !stream.EndStreamSent)
                {
                    _pending.WriteData(stream.StreamId, default, endStream: true); // the half-close after the last flush
                    stream.EndStreamSent = true;
                }
                if (stream.WantsWrittenNotice && stream.WrittenNoticeBurst != _pendingBurst)
                {
                    stream.WrittenNoticeBurst = _pendingBurst;
                    _pendingNotices.Add(stream);
                }
                return;
            }
            long windowBytes = Math.Min(Math.Min(_sendWindowBytes, stream.SendWindowBytes), MaxQueuedDataBytes - _pending.Count);
            if (windowBytes <= 0)
            {
                if (!stream.AwaitingWindow)
                {
                    stream.AwaitingWindow = true;
                    _awaitingWindow.Add(stream);
                }
                return;
            }
            int chunkBytes = (int)Math.Min(Math.Min(body.Length - stream.RequestBodySentBytes, windowBytes), _peerMaxFrameBytes);
            bool last = stream.RequestBodySentBytes + chunkBytes == body.Length && stream.RequestBodyEnded;
            _pending.WriteData(stream.StreamId, body.Slice(stream.RequestBodySentBytes, chunkBytes), last);
            stream.EndStreamSent = last;
            stream.RequestBodySentBytes += chunkBytes;
            stream.SendWindowBytes -= chunkBytes;
            _sendWindowBytes -= chunkBytes;
        }
    }

    /// <summary>Bodies that waited for window, in the order they blocked, each once.</summary>
    private void ResumeAwaitingWindowLocked()
    {
        for (int n = _awaitingWindow.Count; n > 0 && _sendWindowBytes > 0; n--)
        {
            Http2Stream stream = _awaitingWindow[0];
            _awaitingWindow.RemoveAt(0);
            stream.AwaitingWindow = false;
            SendBodyLocked(stream); // blocks again at the end of the list if the window is still short
        }
        _wakeup.Wake();
    }

    /// <summary>Forgets the stream, tells it how it ended, and gives its slot to the next waiting one.</summary>
    private void CloseLocked(Http2Stream stream, Http2StreamEnd end, uint errorCode, object? reason)
    {
        Debug.Assert(stream.Connection == this);
        if (stream.StreamId != 0)
        {
            _active.Remove(stream.StreamId);
            if (end == Http2StreamEnd.Completed && !stream.EndStreamSent && _failure is null)
            {
                // The server answered before taking the whole request: stop its stream rather than leave it half open.
                _pending.WriteRstStream(stream.StreamId, Http2ErrorCode.Cancel);
                _wakeup.Wake();
            }
        }
        else
        {
            _waiting.Remove(stream);
        }
        if (stream.AwaitingWindow)
        {
            _awaitingWindow.Remove(stream);
            stream.AwaitingWindow = false;
        }
        stream.Connection = null;
        stream.OnClosed(end, errorCode, reason);
        OpenWaitingLocked();
    }

    /// <summary>Sends waiting streams, oldest first, while the server's stream limit has room.</summary>
    private void OpenWaitingLocked()
    {
        while (_waiting.Count > 0 && _active.Count < _peerMaxConcurrentStreams && IsUsableLocked)
        {
            Http2Stream next = _waiting[0];
            _waiting.RemoveAt(0);
            OpenLocked(next);
        }
    }

    private async Task WriteLoopAsync()
    {
        try
        {
            while (true)
            {
                Http2FrameBuffer? burst = null;
                long burstNumber = 0;
                ValueTask wait = default;
                lock (_lock)
                {
                    // A burst of no bytes still tells its streams: a flush of nothing new waits only for what went before.
                    if (_pending.Count > 0 || _pendingNotices.Count > 0)
                    {
                        burst = _pending;
                        _pending = _writing;
                        _writing = burst;
                        (_pendingNotices, _writingNotices) = (_writingNotices, _pendingNotices);
                        burstNumber = _pendingBurst++;
                    }
                    else if (_failure is not null)
                    {
                        return;
                    }
                    else
                    {
                        wait = _wakeup.WaitAsync();
                    }
                }
                if (burst is null)
                {
                    await wait.ConfigureAwait(false);
                    // Once more through the thread pool before taking the burst: the calls whose continuations are queued
                    // behind this one add their frames first, and the server reads them in one segment.
                    await Task.Yield();
                    continue;
                }
                if (burst.Count > 0)
                {
                    await _transport.WriteAsync(burst.Written).ConfigureAwait(false);
                    await _transport.FlushAsync().ConfigureAwait(false);
                    burst.Clear();
                }
                lock (_lock)
                {
                    // The flushes whose bytes were in this burst are done: their writers go on (a stream that ended since
                    // was told by its OnClosed).
                    foreach (Http2Stream stream in _writingNotices)
                    {
                        // Not if its body went on into a later burst, or waits for window since.
                        bool allSent = stream.RequestBodySentBytes == stream.RequestBody.Length && (!stream.RequestBodyEnded || stream.EndStreamSent);
                        if (stream.Connection == this && stream.WrittenNoticeBurst == burstNumber && allSent) stream.OnRequestBodyWritten();
                    }
                    _writingNotices.Clear();
                    if (_awaitingWindow.Count > 0) ResumeAwaitingWindowLocked(); // bodies held back by a full burst
                }
            }
        }
        catch (Exception e)
        {
            Fail(new IOException("Writing to the server failed: " + e.Message, e));
        }
    }

    private async Task ReadLoopAsync()
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(ReadBufferBytes);
        int start = 0;
        int end = 0;
        Exception failure;
        try
        {
            while (true)
            {
                while (end - start >= Http2FrameHeader.Bytes)
                {
                    Http2FrameHeader header = Http2FrameHeader.Read(buffer.AsSpan(start));
                    if (header.PayloadBytes > MaxReceiveFrameBytes)
                        throw new Http2ConnectionException(Http2ErrorCode.FrameSizeError, $"A {header.Type} frame of {header.PayloadBytes} bytes, over the {MaxReceiveFrameBytes} advertised.");
                    int frameBytes = Http2FrameHeader.Bytes + header.PayloadBytes;
                    if (end - start < frameBytes) break;
                    ProcessFrame(header, buffer.AsSpan(start + Http2FrameHeader.Bytes, header.PayloadBytes));
                    start += frameBytes;
                }
                if (start == end)
                {
                    start = end = 0;
                }
                else if (buffer.Length - end < Http2FrameHeader.Bytes + MaxReceiveFrameBytes)
                {
                    buffer.AsSpan(start, end - start).CopyTo(buffer);
                    end -= start;
                    start = 0;
                }
                int read = await _transport.ReadAsync(buffer.AsMemory(end)).ConfigureAwait(false);
                if (read == 0) throw new IOException("The server closed the connection.");
                end += read;
            }
        }
        catch (Exception e)
        {
            failure = e;
        }
        ArrayPool<byte>.Shared.Return(buffer);
        Fail(failure);
    }

    private void ProcessFrame(Http2FrameHeader header, ReadOnlySpan<byte> payload)
    {
        if (_headerStreamId != 0 && (header.Type != Http2FrameType.Continuation || header.StreamId != _headerStreamId))
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"A {header.Type} frame inside a header block (CONTINUATION expected).");
        switch (header.Type)
        {
            case Http2FrameType.Data: ProcessData(header, payload); break;
            case Http2FrameType.Headers: ProcessHeaders(header, payload); break;
            case Http2FrameType.Continuation: ProcessContinuation(header, payload); break;
            case Http2FrameType.RstStream: ProcessRstStream(header, payload); break;
            case Http2FrameType.Settings: ProcessSettings(header, payload); break;
            case Http2FrameType.Ping: ProcessPing(header, payload); break;
            case Http2FrameType.GoAway: ProcessGoAway(header, payload); break;
            case Http2FrameType.WindowUpdate: ProcessWindowUpdate(header, payload); break;
            case Http2FrameType.PushPromise:
                throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "PUSH_PROMISE although push is disabled.");
            default: break; // PRIORITY and unknown types are ignored (RFC 7540 §4.1, §5.5)
        }
    }

    /// <summary>The frame's payload without its padding (and priority fields); a connection error if they do not fit.</summary>
    private static ReadOnlySpan<byte> Unpadded(Http2FrameHeader header, ReadOnlySpan<byte> payload, int priorityBytes)
    {
        int padBytes = 0;
        int offset = 0;
        if (header.Has(Http2Flags.Padded))
        {
            if (payload.IsEmpty) throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "A padded frame without its pad length.");
            padBytes = payload[0];
            offset = 1;
        }
        offset += priorityBytes;
        if (offset + padBytes > payload.Length)
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"A {header.Type} frame's padding is longer than the frame.");
        return payload[offset..(payload.Length - padBytes)];
    }

    private void ProcessData(Http2FrameHeader header, ReadOnlySpan<byte> payload)
    {
        if (header.StreamId == 0) throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "DATA on stream 0.");
        ReadOnlySpan<byte> data = Unpadded(header, payload, 0);
        lock (_lock)
        {
            // All of the frame counts against the windows, padding included, whether or not its stream is still here.
            _receiveWindowBytes -= header.PayloadBytes;
            if (_receiveWindowBytes < 0)
                throw new Http2ConnectionException(Http2ErrorCode.FlowControlError, "The server sent past the connection's receive window.");
            _receiveUnackedBytes += header.PayloadBytes;
            if (_receiveUnackedBytes >= _options.ConnectionReceiveWindowBytes / 2)
            {
                _pending.WriteWindowUpdate(0, _receiveUnackedBytes);
                _receiveWindowBytes += _receiveUnackedBytes;
                _receiveUnackedBytes = 0;
                _wakeup.Wake();
            }
            if (!_active.TryGetValue(header.StreamId, out Http2Stream? stream)) return; // reset by us: its late data is dropped
            stream.ReceiveWindowBytes -= header.PayloadBytes;
            if (stream.ReceiveWindowBytes < 0)
            {
                // A stream error (RFC 7540 6.9.1): the connection's other streams go on.
                ResetLocked(stream, new Http2ConnectionException(Http2ErrorCode.FlowControlError, "The server sent past the stream's receive window."),
                    Http2ErrorCode.FlowControlError);
                return;
            }
            if (!stream.HeadersReceived)
            {
                ResetLocked(stream, new Http2ConnectionException(Http2ErrorCode.ProtocolError, "DATA before the response headers."));
                return;
            }
            if (!stream.OnData(data))
            {
                ResetLocked(stream, null);
                return;
            }
            if (header.Has(Http2Flags.EndStream))
            {
                CloseLocked(stream, Http2StreamEnd.Completed, Http2ErrorCode.NoError, null);
                return;
            }
            if (!stream.GrantsWindowOnConsume) GrantLocked(stream, header.PayloadBytes);
        }
    }

    private void ProcessHeaders(Http2FrameHeader header, ReadOnlySpan<byte> payload)
    {
        if (header.StreamId == 0) throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "HEADERS on stream 0.");
        ReadOnlySpan<byte> fragment = Unpadded(header, payload, header.Has(Http2Flags.Priority) ? Http2Limits.PriorityPayloadBytes : 0);
        _headerStreamId = header.StreamId;
        _headerEndStream = header.Has(Http2Flags.EndStream);
        _headerBlockBytes = 0;
        AppendHeaderBlock(fragment);
        if (header.Has(Http2Flags.EndHeaders)) EndHeaderBlock();
    }

    private void ProcessContinuation(Http2FrameHeader header, ReadOnlySpan<byte> payload)
    {
        if (_headerStreamId == 0) throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "CONTINUATION outside a header block.");
        AppendHeaderBlock(payload);
        if (header.Has(Http2Flags.EndHeaders)) EndHeaderBlock();
    }

    private void AppendHeaderBlock(ReadOnlySpan<byte> fragment)
    {
        int needed = _headerBlockBytes + fragment.Length;
        if (needed > MaxHeaderBlockBytes)
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"A header block over {MaxHeaderBlockBytes} bytes.");
        if (needed > _headerBlock.Length)
        {
            byte[] bigger = ArrayPool<byte>.Shared.Rent(Math.Min(Math.Max(needed, 2 * _headerBlock.Length), MaxHeaderBlockBytes));
            _headerBlock.AsSpan(0, _headerBlockBytes).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_headerBlock);
            _headerBlock = bigger;
        }
        fragment.CopyTo(_headerBlock.AsSpan(_headerBlockBytes));
        _headerBlockBytes = needed;
    }

    private void EndHeaderBlock()
    {
        int streamId = _headerStreamId;
        bool endStream = _headerEndStream;
        _headerStreamId = 0;
        lock (_lock)
        {
            _active.TryGetValue(streamId, out Http2Stream? stream);
            try
            {
                // Decoded even for a stream we reset: the block may change the dynamic table the next ones refer to.
                _decoder.Decode(_headerBlock.AsSpan(0, _headerBlockBytes), (IHeaderSink?)stream ?? DiscardHeaders.Instance);
            }
            catch (HpackException e)
            {
                throw new Http2ConnectionException(Http2ErrorCode.CompressionError, "A response header block does not decode: " + e.Message);
            }
            if (stream is null) return;
            bool trailers = stream.HeadersReceived;
            stream.HeadersReceived = true;
            if (!stream.OnHeadersEnd(trailers, endStream))
            {
                ResetLocked(stream, null);
                return;
            }
            if (endStream) CloseLocked(stream, Http2StreamEnd.Completed, Http2ErrorCode.NoError, null);
            else if (trailers) ResetLocked(stream, new Http2ConnectionException(Http2ErrorCode.ProtocolError, "Trailers without END_STREAM."));
        }
    }

    private void ProcessRstStream(Http2FrameHeader header, ReadOnlySpan<byte> payload)
    {
        if (header.StreamId == 0) throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "RST_STREAM on stream 0.");
        if (payload.Length != Http2Limits.RstStreamPayloadBytes) throw new Http2ConnectionException(Http2ErrorCode.FrameSizeError, "RST_STREAM of the wrong length.");
        uint errorCode = BinaryPrimitives.ReadUInt32BigEndian(payload);
        lock (_lock)
        {
            if (!_active.TryGetValue(header.StreamId, out Http2Stream? stream)) return;
            CloseLocked(stream, errorCode == Http2ErrorCode.RefusedStream ? Http2StreamEnd.Unprocessed : Http2StreamEnd.ResetByPeer, errorCode, null);
        }
    }

    private void ProcessSettings(Http2FrameHeader header, ReadOnlySpan<byte> payload)
    {
        if (header.StreamId != 0) throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "SETTINGS on a stream.");
        if (header.Has(Http2Flags.Ack))
        {
            if (!payload.IsEmpty) throw new Http2ConnectionException(Http2ErrorCode.FrameSizeError, "A SETTINGS ack with a payload.");
            return;
        }
        if (payload.Length % Http2Setting.EntryBytes != 0) throw new Http2ConnectionException(Http2ErrorCode.FrameSizeError, "SETTINGS of the wrong length.");
        lock (_lock)
        {
            for (int offset = 0; offset < payload.Length; offset += Http2Setting.EntryBytes)
            {
                ushort id = BinaryPrimitives.ReadUInt16BigEndian(payload[offset..]);
                uint value = BinaryPrimitives.ReadUInt32BigEndian(payload[(offset + 2)..]);
                switch (id)
                {
                    case Http2Setting.MaxConcurrentStreams:
                        _peerMaxConcurrentStreams = (int)Math.Min(value, int.MaxValue);
                        break;
                    case Http2Setting.InitialWindowSize:
                        if (value > Http2Limits.LargestWindowBytes) throw new Http2ConnectionException(Http2ErrorCode.FlowControlError, "SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1.");
                        int deltaBytes = (int)value - _peerInitialWindowBytes;
                        _peerInitialWindowBytes = (int)value;
                        foreach (Http2Stream stream in _active.Values) stream.SendWindowBytes += deltaBytes; // RFC 7540 §6.9.2
                        break;
                    case Http2Setting.MaxFrameSize:
                        if (value is < Http2Limits.DefaultMaxFrameBytes or > Http2Limits.LargestMaxFrameBytes)
                            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"SETTINGS_MAX_FRAME_SIZE {value} out of range.");
                        _peerMaxFrameBytes = (int)value;
                        break;
                    default: break; // HEADER_TABLE_SIZE: our encoder never indexes; the rest concern a server
                }
            }
            _pending.WriteSettingsAck();
            // A raised stream limit lets waiting streams go; a raised window lets waiting bodies go.
            OpenWaitingLocked();
            ResumeAwaitingWindowLocked();
        }
        _settingsReceived.TrySetResult();
    }

    private void ProcessPing(Http2FrameHeader header, ReadOnlySpan<byte> payload)
    {
        if (header.StreamId != 0) throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "PING on a stream.");
        if (payload.Length != Http2Limits.PingPayloadBytes) throw new Http2ConnectionException(Http2ErrorCode.FrameSizeError, "PING of the wrong length.");
        if (header.Has(Http2Flags.Ack)) return; // we send no pings
        lock (_lock)
        {
            _pending.WritePing(payload, ack: true);
            _wakeup.Wake();
        }
    }

    private void ProcessGoAway(Http2FrameHeader header, ReadOnlySpan<byte> payload)
    {
        if (header.StreamId != 0) throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "GOAWAY on a stream.");
        if (payload.Length < Http2Limits.GoAwayMinPayloadBytes) throw new Http2ConnectionException(Http2ErrorCode.FrameSizeError, "GOAWAY too short.");
        int lastStreamId = (int)(BinaryPrimitives.ReadUInt32BigEndian(payload) & 0x7FFF_FFFF);
        uint errorCode = BinaryPrimitives.ReadUInt32BigEndian(payload[4..]);
        lock (_lock)
        {
            _goingAway = true;
            // Streams above the last one the server will process, and those never sent, may go again on another connection.
            List<Http2Stream>? unprocessed = null;
            foreach (Http2Stream stream in _active.Values)
                if (stream.StreamId > lastStreamId) (unprocessed ??= new()).Add(stream);
            unprocessed?.AddRange(_waiting);
            if (unprocessed is null && _waiting.Count > 0) unprocessed = new(_waiting);
            if (unprocessed is not null)
                foreach (Http2Stream stream in unprocessed) CloseLocked(stream, Http2StreamEnd.Unprocessed, errorCode, null);
        }
    }

    private void ProcessWindowUpdate(Http2FrameHeader header, ReadOnlySpan<byte> payload)
    {
        if (payload.Length != Http2Limits.WindowUpdatePayloadBytes) throw new Http2ConnectionException(Http2ErrorCode.FrameSizeError, "WINDOW_UPDATE of the wrong length.");
        int incrementBytes = (int)(BinaryPrimitives.ReadUInt32BigEndian(payload) & 0x7FFF_FFFF);
        lock (_lock)
        {
            if (header.StreamId == 0)
            {
                if (incrementBytes == 0) throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "WINDOW_UPDATE of 0 on the connection.");
                _sendWindowBytes += incrementBytes;
                if (_sendWindowBytes > Http2Limits.LargestWindowBytes) throw new Http2ConnectionException(Http2ErrorCode.FlowControlError, "The connection's send window over 2^31-1.");
            }
            else
            {
                if (!_active.TryGetValue(header.StreamId, out Http2Stream? stream)) return;
                if (incrementBytes == 0)
                {
                    ResetLocked(stream, new Http2ConnectionException(Http2ErrorCode.ProtocolError, "A stream's WINDOW_UPDATE of 0."));
                    return;
                }
                stream.SendWindowBytes += incrementBytes;
                if (stream.SendWindowBytes > Http2Limits.LargestWindowBytes)
                {
                    ResetLocked(stream, new Http2ConnectionException(Http2ErrorCode.FlowControlError, "A stream's send window over 2^31-1."));
                    return;
                }
            }
            ResumeAwaitingWindowLocked();
        }
    }

    /// <summary>Ends the connection once: every stream still on it ends (sent ones ConnectionLost, waiting ones Unprocessed).</summary>
    private void Fail(Exception failure)
    {
        lock (_lock)
        {
            if (_failure is not null) return;
            _failure = failure;
            uint errorCode = failure is Http2ConnectionException h2 ? h2.ErrorCode : Http2ErrorCode.NoError;
            foreach (Http2Stream stream in _waiting.ToArray()) CloseLocked(stream, Http2StreamEnd.Unprocessed, errorCode, failure);
            foreach (Http2Stream stream in _active.Values.ToArray()) CloseLocked(stream, Http2StreamEnd.ConnectionLost, errorCode, failure);
            _wakeup.Wake(); // the writer sees the failure and ends
        }
        _settingsReceived.TrySetException(failure);
        _transport.Dispose();
    }

    /// <summary>Closes the connection; calls still on it end as a lost connection.</summary>
    public void Dispose()
    {
        Fail(new IOException("The connection was closed by the client."));
        // The loops end on the closed transport; their buffers go back to the pool when they do.
        _ = Task.WhenAll(_readLoop, _writeLoop).ContinueWith(static (_, s) => ((Http2ClientConnection)s!).ReleaseBuffers(), this,
            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private void ReleaseBuffers()
    {
        lock (_lock)
        {
            _pending.Dispose();
            _writing.Dispose();
        }
        ArrayPool<byte>.Shared.Return(_headerBlock);
        _headerBlock = [];
    }

    /// <summary>The header sink of a stream that is gone: the block is decoded (for the dynamic table) and dropped.</summary>
    private sealed class DiscardHeaders : IHeaderSink
    {
        public static readonly DiscardHeaders Instance = new();

        public void OnHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value) { }
    }
}
