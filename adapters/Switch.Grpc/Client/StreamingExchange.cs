using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;
using Google.Protobuf;
using Switch.Grpc.Framing;
using Switch.Grpc.Http2;

namespace Switch.Grpc.Client;

/// <summary>The message-type-free view of a client call that the call objects expose.</summary>
internal interface IClientCall : IDisposable
{
    ValueTask<Metadata> GetResponseHeadersAsync();
    Status? Status { get; }
    Metadata Trailers { get; }
}

/// <summary>Where a <see cref="ClientRequestStream{TRequest}"/> puts its frames, and how it sends them.</summary>
internal interface IRequestSink
{
    /// <summary>Frames written here are sent at the next flush; only the one writer touches it.</summary>
    IBufferWriter<byte> Staging { get; }

    /// <summary>Sends what was staged; completes once the connection wrote it to the socket (the peer's windows allowing).</summary>
    ValueTask FlushAsync(CancellationToken cancellationToken);

    /// <summary>Sends what was staged and ends the request (END_STREAM).</summary>
    ValueTask CompleteAsync();

    /// <summary>The RpcException a write that threw <paramref name="e"/> fails with (the call's end, if it ended).</summary>
    RpcException FailWrite(Exception e);
}

/// <summary>
/// A streaming call (server, client or duplex streaming) on the channel's own HTTP/2 connection. The writer stages frames
/// in one buffer and a flush hands them to the connection, which frames all of it in as few DATA frames as the peer's
/// frame size and windows allow, in the writer's next burst with the other streams' frames. A flush completes once its
/// bytes were written to the socket (as HttpClient's did: a writer that writes what queued meanwhile batches by itself),
/// and one the windows hold back waits (asynchronously) for WINDOW_UPDATE. Response DATA goes into a pipe the message reader reads; the stream's receive
/// window is granted back as the reader takes bytes, so a reader that stops reading stops the server (buffered at most a
/// window, and one partial message). A stream's end (server status, RST_STREAM, GOAWAY, a lost connection, our deadline
/// or cancellation) fails the reader and the writer alike, with the status <see cref="ClientExchange"/> maps.
/// </summary>
internal sealed class StreamingExchange<TRequest, TResponse> : ClientExchange, IClientCall, IRequestSink, IValueTaskSource<bool>
    where TRequest : class, IMessage<TRequest>
    where TResponse : class, IMessage<TResponse>
{
    private readonly GrpcMethod<TRequest, TResponse> _method;
    private readonly TaskCompletionSource<Http2ClientConnection> _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _headersArrived = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Pipe _responseBody;
    private readonly WindowGrantingReader _responseReader;

    // The request: the writer stages frames; under the connection's lock a flush moves them to _sending, which the
    // connection frames from RequestBodySentBytes on.
    private ArrayBufferWriter<byte> _staging = new(16 * 1024);
    private ArrayBufferWriter<byte> _sending = new(16 * 1024);
    private bool _completeRequested; // the writer's; taken under the lock
    private bool _bodyEnded; // under the connection's lock
    private ManualResetValueTaskSourceCore<bool> _flushed = new() { RunContinuationsAsynchronously = true };
    private bool _awaitingFlush; // under the connection's lock

    // The response.
    private Metadata? _responseHeaders; // made when they arrive (under the lock): later the fields buffer may grow with trailers
    private GrpcMessageReader<TResponse>? _reader;
    private Status? _status;
    private Metadata? _trailers;
    private bool _disposed;

    public StreamingExchange(GrpcChannel channel, GrpcMethod<TRequest, TResponse> method) : base(channel)
    {
        _method = method;
        // The connection's reader writes under its lock: it must never wait (no pause), and the reader must resume on the pool.
        _responseBody = new Pipe(new PipeOptions(pauseWriterThreshold: 0, resumeWriterThreshold: 0, readerScheduler: PipeScheduler.ThreadPool,
            writerScheduler: PipeScheduler.Inline, useSynchronizationContext: false));
        _responseReader = new WindowGrantingReader(_responseBody.Reader, this);
    }

    public override ReadOnlyMemory<byte> RequestBody => _sending.WrittenMemory;

    public override bool RequestBodyEnded => _bodyEnded;

    public override bool GrantsWindowOnConsume => true;

    public IBufferWriter<byte> Staging => _staging;

    /// <summary>A server-streaming call's one request, sent with its headers (END_STREAM on it); before <see cref="Start"/>.</summary>
    public void QueueSingleRequest(TRequest request)
    {
        new MessageFrame<TRequest>(request).Write(_sending, _channel.Options.MaxSendMessageBytes, _channel.Options.CompressRequests);
        _completeRequested = _bodyEnded = true;
    }

    /// <summary>Prepares the headers, deadline and cancellation (throwing as a call that cannot start does), then opens the
    /// stream in the background: the caller writes and reads at once, and both wait for the stream where they must.</summary>
    public void Start(byte[] pathBytes, CallOptions options)
    {
        PrepareCall(pathBytes, options, bodyBytes: -1);
        _ = OpenAsync();
    }

    private async Task OpenAsync()
    {
        try
        {
            Http2ClientConnection connection = await StartOnConnectionAsync().ConfigureAwait(false);
            _started.TrySetResult(connection);
        }
        catch (Exception e)
        {
            RpcException failure = e as RpcException ?? Failure(e);
            _status ??= failure.Status;
            _responseBody.Writer.Complete(failure);
            _headersArrived.TrySetResult();
            _started.TrySetException(failure);
        }
    }

    // ---- the writer ----

    /// <summary>Pooled: a bank link or a generator lane flushes once per batch for the stream's life, and each flush that
    /// waits for the socket write would otherwise allocate its state machine.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        Http2ClientConnection connection = _started.Task.IsCompletedSuccessfully
            ? _started.Task.Result
            : await AwaitStartAsync(cancellationToken).ConfigureAwait(false);
        _flushed.Reset();
        if (!SendStaged(connection)) throw WriteFailure(null);
        short version = _flushed.Version;
        // Cancellation matters only to a flush still waiting for its write.
        using CancellationTokenRegistration cancel = _flushed.GetStatus(version) == ValueTaskSourceStatus.Pending && cancellationToken.CanBeCanceled
            ? cancellationToken.UnsafeRegister(static s => ((StreamingExchange<TRequest, TResponse>)s!).Abort(CancelReason), this)
            : default;
        if (!await new ValueTask<bool>(this, version).ConfigureAwait(false)) throw WriteFailure(null);
    }

    public ValueTask CompleteAsync()
    {
        _completeRequested = true;
        return FlushAsync(default);
    }

    private async Task<Http2ClientConnection> AwaitStartAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await _started.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            throw WriteFailure(e);
        }
    }

    /// <summary>Hands what is staged to the connection; false if the stream ended (the flush fails with the call's end).</summary>
    private bool SendStaged(Http2ClientConnection connection)
    {
        Volatile.Write(ref _awaitingFlush, true); // before the lock is taken: the connection may complete it at once
        if (connection.Send(this)) return true;
        Volatile.Write(ref _awaitingFlush, false);
        return false;
    }

    public RpcException FailWrite(Exception e) => WriteFailure(e);

    /// <summary>A write or flush that failed (<paramref name="e"/>) or found the stream ended (null): the caller's
    /// cancellation, the deadline or a refused message end the call as a read would; a stream the server ended fails the
    /// write with the server's status; otherwise the stream's end.</summary>
    private RpcException WriteFailure(Exception? e)
    {
        if (e is RpcException rpc) return Fail(rpc);
        if (e is not null && e is not OperationCanceledException) return Fail(e);
        if (Volatile.Read(ref _abortReason) is not null || _callerToken.IsCancellationRequested) return Fail(e ?? new OperationCanceledException());
        if (_started.Task.IsFaulted) return (RpcException)_started.Task.Exception!.InnerException!;
        if (_end == Http2StreamEnd.Completed && _refusal is null)
        {
            // An OK end is not the call's status yet: the reader may still have messages to take before it.
            Status status = ServerStatus();
            if (status.Code != StatusCode.OK) _status ??= status;
            return new RpcException(status, TrailerMetadata());
        }
        return Fail(EndCause());
    }

    // ---- the reader ----

    public async ValueTask<Metadata> GetResponseHeadersAsync()
    {
        await _headersArrived.Task.ConfigureAwait(false);
        if (_responseHeaders is { } headers) return headers;
        throw Fail(_refusal ?? (_started.Task.IsFaulted ? _started.Task.Exception!.InnerException! : EndCause()));
    }

    /// <summary>The next response message; null once the response ended with OK; RpcException otherwise.</summary>
    public async ValueTask<TResponse?> ReadMessageAsync(CancellationToken cancellationToken = default)
    {
        if (_status is { } done)
            return done.Code == StatusCode.OK ? null : throw new RpcException(done, Trailers);
        CancellationTokenRegistration registration = cancellationToken.CanBeCanceled
            ? cancellationToken.UnsafeRegister(static s => ((StreamingExchange<TRequest, TResponse>)s!).Abort(CancelReason), this)
            : default;
        try
        {
            if (_reader is null)
            {
                await AwaitResponseHeadersAsync().ConfigureAwait(false);
                if (_trailersOnly) return FinishWithServerStatus<TResponse>(null);
                _reader = new GrpcMessageReader<TResponse>(_responseReader, _method.ResponseParser, _channel.Options.MaxReceiveMessageBytes, _gzip);
            }
            TResponse? message = await _reader.ReadAsync(default).ConfigureAwait(false);
            return message ?? FinishWithServerStatus<TResponse>(null);
        }
        catch (Exception e)
        {
            throw Fail(e);
        }
        finally
        {
            registration.Dispose();
        }
    }

    /// <summary>The one message of a client-streaming call once the call ended with OK (else RpcException with the
    /// server's status): the body read straight into one buffer (<see cref="SingleResponseBuffer"/>) and parsed at the end.</summary>
    public async ValueTask<TResponse> ReadSingleAsync()
    {
        if (_reader is not null) throw new InvalidOperationException("The response is already being read as a stream.");
        var body = new SingleResponseBuffer();
        body.Begin();
        try
        {
            await AwaitResponseHeadersAsync().ConfigureAwait(false);
            if (_trailersOnly)
            {
                FinishWithServerStatus<TResponse>(null); // throws the status unless OK
                throw SingleResponseBuffer.NoSingleResponse();
            }
            int maxMessageBytes = _channel.Options.MaxReceiveMessageBytes;
            while (true)
            {
                ReadResult read = await _responseReader.ReadAsync(default).ConfigureAwait(false);
                foreach (ReadOnlyMemory<byte> segment in read.Buffer) body.Append(segment.Span, maxMessageBytes, _gzip);
                _responseReader.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted) break;
            }
            FinishWithServerStatus<TResponse>(null); // the server's status wins over what its body holds
            return body.Parse(_method.ResponseParser, maxMessageBytes);
        }
        catch (Exception e)
        {
            throw Fail(e);
        }
        finally
        {
            body.Release();
        }
    }

    private async ValueTask AwaitResponseHeadersAsync()
    {
        await _headersArrived.Task.ConfigureAwait(false);
        if (_refusal is { } refusal) throw refusal;
        if (_responseHeaders is null) throw _started.Task.IsFaulted ? _started.Task.Exception!.InnerException! : EndCause();
    }

    /// <summary>The status the server sent (trailers, or Trailers-Only headers); UNKNOWN if it sent none.</summary>
    private Status ServerStatus() =>
        _trailersReceived ? ClientStatus.FromTrailers(_grpcStatus, _grpcMessage) : ClientStatus.NoStatus;

    /// <summary>The response ended: the call's status is the server's; OK returns <paramref name="value"/>, else throws.</summary>
    private T? FinishWithServerStatus<T>(T? value) where T : class
    {
        if (_refusal is { } refusal) throw refusal;
        Status status = ServerStatus();
        _status ??= status;
        if (status.Code != StatusCode.OK) throw new RpcException(status, Trailers);
        return value;
    }

    /// <summary>Turns any failure into the RpcException the caller sees, remembers it as the call's status, and resets the
    /// stream if it is still open.</summary>
    private RpcException Fail(Exception e)
    {
        RpcException result = e as RpcException ?? Failure(e);
        _status ??= result.Status;
        if (result.Status.Code != StatusCode.OK) Connection?.Reset(this, result);
        return result;
    }

    public Status? Status => _status;

    /// <summary>The trailers (a Trailers-Only response's headers), once the call ended.</summary>
    public Metadata Trailers => _status is null ? new Metadata() : _trailers ??= TrailerMetadata();

    /// <summary>Cancels the stream (RST_STREAM CANCEL) if it is still open; gives back what the call holds once it is over.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_status is null) Abort(CancelReason); // not finished: reset rather than leave the stream open
        FinishCall();
        DisposeCall(returnBuffers: false);
        _responseBody.Reader.Complete();
    }

    /// <summary>The reader took <paramref name="bytes"/> more of the response: the server may send as many again.</summary>
    private void Consumed(int bytes)
    {
        if (bytes > 0 && _started.Task.IsCompletedSuccessfully) _started.Task.Result.Consumed(this, bytes);
    }

    // ---- the connection's callbacks (under its lock) ----

    public override void TakeStagedBody()
    {
        if (_staging.WrittenCount > 0)
        {
            if (RequestBodySentBytes == _sending.WrittenCount)
            {
                // All sent before: the buffers trade places, nothing is copied.
                (_staging, _sending) = (_sending, _staging);
                RequestBodySentBytes = 0;
            }
            else
            {
                _sending.Write(_staging.WrittenSpan); // a flush before the last one drained (windows): appended
            }
            _staging.ResetWrittenCount();
        }
        if (_completeRequested) _bodyEnded = true;
    }

    public override bool WantsWrittenNotice => true;

    public override void OnRequestBodyWritten()
    {
        if (!Volatile.Read(ref _awaitingFlush)) return;
        _awaitingFlush = false;
        _flushed.SetResult(true);
    }

    public override bool OnHeadersEnd(bool trailers, bool endStream)
    {
        bool keep = base.OnHeadersEnd(trailers, endStream);
        if (!trailers)
        {
            if (_refusal is null) _responseHeaders = ResponseHeaderMetadata();
            _headersArrived.TrySetResult();
        }
        return keep;
    }

    public override bool OnData(ReadOnlySpan<byte> data)
    {
        PipeWriter writer = _responseBody.Writer;
        writer.Write(data);
        ValueTask<FlushResult> flush = writer.FlushAsync();
        Debug.Assert(flush.IsCompleted, "the response pipe never pauses its writer");
        return true;
    }

    public override void OnClosed(Http2StreamEnd end, uint errorCode, object? reason)
    {
        _end = end;
        _errorCode = errorCode;
        _endReason = reason;
        if (end == Http2StreamEnd.Completed) _responseBody.Writer.Complete();
        else _responseBody.Writer.Complete(reason as RpcException ?? EndCause());
        _headersArrived.TrySetResult();
        if (_awaitingFlush)
        {
            // A flush whose bytes all went before the server ended the call did its part (the server's answer may come
            // before our writer reports the write); one cut short fails with how the call ended.
            _awaitingFlush = false;
            _flushed.SetResult(end == Http2StreamEnd.Completed && RequestBodySentBytes == RequestBody.Length && (!_bodyEnded || EndStreamSent));
        }
    }

    bool IValueTaskSource<bool>.GetResult(short token) => _flushed.GetResult(token);
    ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => _flushed.GetStatus(token);
    void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _flushed.OnCompleted(continuation, state, token, flags);

    /// <summary>
    /// The response pipe's reader, granting the stream's receive window back as bytes are handed to the message reader
    /// (not as they are consumed: a message longer than the window is handed out whole-window by whole-window before any
    /// of it is consumed). What the server may still send is then at most a window beyond what the reader took.
    /// </summary>
    private sealed class WindowGrantingReader(PipeReader inner, StreamingExchange<TRequest, TResponse> exchange) : PipeReader
    {
        private ReadOnlySequence<byte> _lastBuffer;
        private long _handedOutBytes; // of the pipe's unconsumed bytes, those a read returned (already granted)

        public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            ValueTask<ReadResult> read = inner.ReadAsync(cancellationToken);
            if (!read.IsCompletedSuccessfully) return AwaitRead(read);
            ReadResult result = read.Result;
            HandOut(result);
            return new ValueTask<ReadResult>(result);
        }

        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
        private async ValueTask<ReadResult> AwaitRead(ValueTask<ReadResult> read)
        {
            ReadResult result = await read.ConfigureAwait(false);
            HandOut(result);
            return result;
        }

        public override bool TryRead(out ReadResult result)
        {
            if (!inner.TryRead(out result)) return false;
            HandOut(result);
            return true;
        }

        private void HandOut(in ReadResult result)
        {
            _lastBuffer = result.Buffer;
            long newBytes = result.Buffer.Length - _handedOutBytes;
            _handedOutBytes = result.Buffer.Length;
            Debug.Assert(newBytes >= 0 && newBytes <= int.MaxValue);
            exchange.Consumed((int)newBytes);
        }

        public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
        {
            _handedOutBytes = _lastBuffer.Slice(consumed).Length;
            _lastBuffer = default;
            inner.AdvanceTo(consumed, examined);
        }

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);
    }
}
