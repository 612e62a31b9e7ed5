using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using Google.Protobuf;
using Switch.Grpc.Framing;

namespace Switch.Grpc.Client;

/// <summary>
/// One client call over one HTTP/2 stream: sends the request headers and body, reads response headers,
/// frames and the status (from trailers, or from headers for a Trailers-Only response), and maps transport
/// failures, local deadline and cancellation to gRPC statuses. Dispose resets the stream if it is still open.
/// </summary>
/// <summary>The message-type-free view of a client call that the call objects expose.</summary>
internal interface IClientCall : IDisposable
{
    ValueTask<Metadata> GetResponseHeadersAsync();
    Status? Status { get; }
    Metadata Trailers { get; }
}

internal sealed class ClientCall<TRequest, TResponse> : IClientCall
    where TRequest : class, IMessage<TRequest>
    where TResponse : class, IMessage<TResponse>
{
    /// <summary>Transparent retries of a request the server refused unprocessed (HTTP/2 REFUSED_STREAM).</summary>
    private const int MaxRefusedRetries = 5;

    private static bool IsRefusedStream(Exception e) =>
        e.InnerException is HttpProtocolException { ErrorCode: 0x7 } || e is HttpProtocolException { ErrorCode: 0x7 };

    private readonly GrpcChannel _channel;
    private readonly GrpcMethod<TRequest, TResponse> _method;
    private readonly CallOptions _options;
    private readonly DateTime? _deadline;
    // One source per call carries the deadline timer, the caller's token and our own aborts: a linked source per
    // call (plus a second one for the timer) cost two allocations and a registration on every unary call.
    private readonly CancellationTokenSource _callCts = new();
    private readonly CancellationTokenRegistration _callerRegistration;
    // Set before _callCts is canceled by anything other than the deadline timer, so Fail can tell them apart.
    private volatile bool _cancelledNotByDeadline;
    private HttpHeaders? _responseHeadersSource;
    private HttpHeaders? _trailersSource;
    private Metadata? _responseHeaders;
    private Metadata? _trailers;
    private Task<HttpResponseMessage>? _sendTask;
    private HttpContent? _content;
    private int _refusedRetries;
    private HttpResponseMessage? _response;
    private Stream? _body;
    private bool _gzipResponses;
    private PipeReader? _responsePipe;
    private GrpcMessageReader<TResponse>? _reader; // made at the first streamed read: a single response reads the body itself
    private bool _headersReceived;
    private bool _trailersOnly;
    private Status? _status;
    private bool _disposed;

    public ClientCall(GrpcChannel channel, GrpcMethod<TRequest, TResponse> method, CallOptions options)
    {
        _channel = channel;
        _method = method;
        _options = options;
        _deadline = options.EffectiveDeadline(DateTime.UtcNow);
        if (options.CancellationToken.CanBeCanceled)
            _callerRegistration = options.CancellationToken.UnsafeRegister(static s => ((ClientCall<TRequest, TResponse>)s!).CancelNotByDeadline(), this);
        if (_deadline is { } deadline)
        {
            TimeSpan remaining = deadline - DateTime.UtcNow;
            if (remaining <= TimeSpan.Zero) _callCts.Cancel();
            else if (remaining < CallOptions.MaxTimerTimeout) _callCts.CancelAfter(remaining);
        }
    }

    private void CancelNotByDeadline()
    {
        _cancelledNotByDeadline = true;
        try { _callCts.Cancel(); }
        catch (ObjectDisposedException) { }
    }

    /// <summary>True once the deadline timer (not the caller, not an abort) canceled the call.</summary>
    private bool DeadlineExpired => _deadline is not null && _callCts.IsCancellationRequested && !_cancelledNotByDeadline;

    public CancellationToken Token => _callCts.Token;

    // Headers and trailers are turned into Metadata only when someone asks: a plain unary call never does,
    // and the conversion walks and copies every header.
    public Metadata ResponseHeaders => _responseHeaders ??= ToMetadata(_responseHeadersSource);

    public Metadata Trailers => _trailers ??= ToMetadata(_trailersSource);

    /// <summary>The final status, once the response has ended.</summary>
    public Status? Status => _status;

    public GrpcChannelOptions ChannelOptions => _channel.Options;

    /// <summary>Sends the request headers and starts the body; the response is awaited by the read methods.</summary>
    public void Start(HttpContent content)
    {
        _content = content;
        if (DeadlineExpired)
            throw new RpcException(ClientStatus.DeadlineExceeded);
        _options.CancellationToken.ThrowIfCancellationRequested();

        var request = new HttpRequestMessage(HttpMethod.Post, _channel.UriFor(_method.Path))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = content,
        };
        HttpRequestHeaders headers = request.Headers;
        headers.TryAddWithoutValidation("te", "trailers");
        headers.TryAddWithoutValidation("user-agent", GrpcProtocol.UserAgent);
        headers.TryAddWithoutValidation(GrpcProtocol.AcceptEncodingHeader, GzipMessages.AcceptEncoding);
        if (_channel.Options.CompressRequests) headers.TryAddWithoutValidation(GrpcProtocol.EncodingHeader, GzipMessages.Name);
        if (_deadline is { } deadline)
            headers.TryAddWithoutValidation(GrpcProtocol.TimeoutHeader, GrpcTimeout.Format(deadline - DateTime.UtcNow));
        if (_options.Headers is { } metadata)
            foreach (var entry in metadata) headers.TryAddWithoutValidation(entry.Key, Metadata.ToWireValue(entry));

        _sendTask = _channel.HttpClient.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, _callCts.Token);
        if (content is StreamingRequestContent streaming)
        {
            // If the send fails before HttpClient asks for the body, a writer waiting for the stream must not hang.
            _sendTask.ContinueWith(static (t, s) => ((StreamingRequestContent)s!).Abort(t.Exception!.InnerException!),
                streaming, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            _sendTask.ContinueWith(static (t, s) => ((StreamingRequestContent)s!).Abort(new OperationCanceledException()),
                streaming, CancellationToken.None, TaskContinuationOptions.OnlyOnCanceled | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            // A server that ended the call at once (Trailers-Only: a refusal at its start) may do so before HttpClient asks
            // for the body; HttpClient then never does, and a writer waiting for the request stream waited forever (a
            // test hung 10 minutes under load). The body is over either way: the writer fails, and reads the server's status.
            _sendTask.ContinueWith(static (t, s) =>
                {
                    if (t.Result.Headers.Contains(GrpcProtocol.StatusHeader))
                        ((StreamingRequestContent)s!).Abort(new IOException("The server ended the call before the request stream was written."));
                },
                streaming, CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    public async ValueTask<Metadata> GetResponseHeadersAsync()
    {
        try
        {
            await ReceiveHeadersAsync().ConfigureAwait(false);
            return ResponseHeaders;
        }
        catch (Exception e)
        {
            throw Fail(e);
        }
    }

    /// <summary>The next response message; null once the response ended with OK; RpcException otherwise.</summary>
    public async ValueTask<TResponse?> ReadMessageAsync(CancellationToken cancellationToken = default)
    {
        if (_status is { } done)
            return done.Code == StatusCode.OK ? null : throw new RpcException(done, Trailers);
        CancellationTokenRegistration registration = cancellationToken.CanBeCanceled
            ? cancellationToken.UnsafeRegister(static s => ((ClientCall<TRequest, TResponse>)s!).CancelNotByDeadline(), this)
            : default;
        try
        {
            if (!_headersReceived) await ReceiveHeadersAsync().ConfigureAwait(false);
            if (_trailersOnly) return FinishTrailersOnly();
            _reader ??= MessageReader();
            TResponse? message = await _reader.ReadAsync(_callCts.Token).ConfigureAwait(false);
            if (message is null) FinishFromTrailers();
            return message;
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

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))] // awaited once wherever it is called: its box is pooled
    private async ValueTask ReceiveHeadersAsync()
    {
        if (_headersReceived) return;
        if (_sendTask is null) throw new InvalidOperationException("The call was not started.");
        HttpResponseMessage response;
        while (true)
        {
            try
            {
                response = await _sendTask.ConfigureAwait(false);
                break;
            }
            catch (HttpRequestException e) when (IsRefusedStream(e) && _content is UnaryRequestContent<TRequest> && _refusedRetries < MaxRefusedRetries)
            {
                // REFUSED_STREAM means the server processed nothing (e.g. over its stream limit before the client
                // saw SETTINGS): safe to send again. Only single-message bodies are replayable.
                _refusedRetries++;
                Start(_content);
            }
        }
        _response = response;
        _responseHeadersSource = response.Headers;

        if (response.StatusCode != HttpStatusCode.OK)
        {
            var status = ClientStatus.BadHttpStatus((int)response.StatusCode);
            _status = status;
            throw new RpcException(status);
        }
        if (response.Headers.Contains(GrpcProtocol.StatusHeader))
        {
            _headersReceived = true;
            _trailersOnly = true; // Trailers-Only: the status came in the headers and the body is empty.
            return;
        }
        string? contentType = response.Content.Headers.ContentType?.MediaType;
        if (!GrpcProtocol.IsGrpcContentType(contentType))
        {
            var status = ClientStatus.BadContentType(contentType);
            _status = status;
            throw new RpcException(status);
        }
        string? encoding = response.Headers.NonValidated.TryGetValues(GrpcProtocol.EncodingHeader, out HeaderStringValues encodings) ? First(encodings) : null;
        if (!GzipMessages.TryParseEncoding(encoding, out bool gzip))
        {
            var status = ClientStatus.BadEncoding(encoding);
            _status = status;
            throw new RpcException(status);
        }
        _body = await response.Content.ReadAsStreamAsync(_callCts.Token).ConfigureAwait(false);
        _gzipResponses = gzip;
        _headersReceived = true;
    }

    private GrpcMessageReader<TResponse> MessageReader()
    {
        _responsePipe = PipeReader.Create(_body!, new StreamPipeReaderOptions(bufferSize: 16 * 1024, leaveOpen: true));
        return new GrpcMessageReader<TResponse>(_responsePipe, _method.ResponseParser, _channel.Options.MaxReceiveMessageBytes, _gzipResponses);
    }

    /// <summary>
    /// The one message of a single-response call, once the call ended with OK (else RpcException with the server's
    /// status). The body is read straight into one rented array until its end (<see cref="SingleResponseBuffer"/>), and
    /// the message parsed from there: one async layer where reading it as a stream took three.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))] // awaited once by its one caller: its box is pooled
    public async ValueTask<TResponse> ReadSingleAsync()
    {
        if (_reader is not null) throw new InvalidOperationException("The response is already being read as a stream.");
        var body = new SingleResponseBuffer();
        body.Begin();
        try
        {
            if (!_headersReceived) await ReceiveHeadersAsync().ConfigureAwait(false);
            if (_trailersOnly)
            {
                FinishTrailersOnly(); // throws the status unless OK
                throw SingleResponseBuffer.NoSingleResponse();
            }
            int maxMessageBytes = _channel.Options.MaxReceiveMessageBytes;
            while (true)
            {
                int read = await _body!.ReadAsync(body.Free(), _callCts.Token).ConfigureAwait(false);
                if (read == 0) break;
                body.Advance(read, maxMessageBytes, _gzipResponses);
            }
            FinishFromTrailers(); // the server's status wins over what its body holds
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

    private TResponse? FinishTrailersOnly()
    {
        HttpResponseHeaders headers = _response!.Headers;
        _trailersSource = headers; // Trailers-Only: what came as headers are the trailers; there are no headers.
        _responseHeadersSource = null;
        return Finish(ReadStatus(headers));
    }

    private void FinishFromTrailers()
    {
        HttpResponseHeaders trailers = _response!.TrailingHeaders;
        _trailersSource = trailers;
        Finish(ReadStatus(trailers));
    }

    private TResponse? Finish(Status status)
    {
        _status = status;
        if (status.Code != StatusCode.OK) throw new RpcException(status, Trailers);
        return null;
    }

    private static Status ReadStatus(HttpHeaders headers)
    {
        // The headers' raw view: the checked one makes a list and an enumerator for every value asked for.
        string? code = headers.NonValidated.TryGetValues(GrpcProtocol.StatusHeader, out HeaderStringValues codes) ? First(codes) : null;
        string? message = code is not null && headers.NonValidated.TryGetValues(GrpcProtocol.MessageHeader, out HeaderStringValues messages)
            ? First(messages)
            : null;
        return ClientStatus.FromTrailers(code, message);
    }

    /// <summary>The first of a header's values (a header present has one).</summary>
    private static string First(HeaderStringValues values)
    {
        foreach (string value in values) return value;
        return "";
    }

    private static Metadata ToMetadata(HttpHeaders? headers)
    {
        var metadata = new Metadata();
        if (headers is null) return metadata;
        foreach (var (key, values) in headers)
            foreach (var value in values)
                metadata.AddFromWire(key, value);
        return metadata;
    }

    /// <summary>How long a failed write waits for the server's answer to say why (see <see cref="FailWrite"/>).</summary>
    private const int WriteFailureAnswerWaitMs = 1_000;

    /// <summary>
    /// A failed write of the request stream. The caller's cancellation, the deadline or our own refusal end the call as
    /// <see cref="Fail"/> does. A write that broke on the transport does not: the server may have ended the call (a refusal
    /// at its start races the first write, which then fails on the closed stream), and its status, on the way or already
    /// in, must be what the caller reads; a lost connection is reported by the read side too.
    /// </summary>
    public RpcException FailWrite(Exception e)
    {
        if (e is RpcException || DeadlineExpired || _options.CancellationToken.IsCancellationRequested) return Fail(e);
        if (_status is { } known) return new RpcException(known, Trailers, e);
        // A server that refuses a call (Trailers-Only) may reset the request side before its answer's headers are
        // processed here: wait a moment for them, so the write fails with the server's status and trailers (a refusal
        // names where to go), not a bare UNAVAILABLE. Only on this failure path; bounded.
        if (_sendTask is { IsCompleted: false } pending)
        {
            try
            {
                pending.Wait(WriteFailureAnswerWaitMs);
            }
            catch (AggregateException)
            {
                // The answer failed too: the transport's error below.
            }
        }
        if (EndedByServer() is { } sent) return Fail(new RpcException(sent, Trailers));
        return new RpcException(new Status(StatusCode.Unavailable,
            "The request stream is closed; the call's status comes with the response: " + e.Message), null, e);
    }

    /// <summary>The status of a server that ended the call before sending anything (Trailers-Only), once its answer is in.</summary>
    private Status? EndedByServer()
    {
        if (_sendTask is not { IsCompletedSuccessfully: true } sent) return null;
        HttpResponseMessage response = sent.Result;
        if (response.StatusCode != HttpStatusCode.OK || !response.Headers.Contains(GrpcProtocol.StatusHeader)) return null;
        _trailersSource = response.Headers; // Trailers-Only: what came as headers are the trailers (a refusal names where to go)
        return ReadStatus(response.Headers);
    }

    /// <summary>Turns any failure into the RpcException the caller sees, remembers it as the call's status, and resets the stream.</summary>
    public RpcException Fail(Exception e)
    {
        // Order matters: a status the server sent wins; then our own deadline; then cancellation; then the transport.
        RpcException result = e switch
        {
            RpcException rpc => rpc,
            _ when DeadlineExpired =>
                new RpcException(ClientStatus.DeadlineExceeded, null, e),
            _ when _options.CancellationToken.IsCancellationRequested || e is OperationCanceledException =>
                new RpcException(ClientStatus.Cancelled, null, e),
            _ => new RpcException(ClientStatus.FromTransport(e), null, e),
        };
        _status ??= result.Status;
        if (result.Status.Code != StatusCode.OK) Abort();
        return result;
    }

    /// <summary>Cancels the HTTP/2 stream (RST_STREAM CANCEL) if it is still open.</summary>
    public void Abort()
    {
        CancelNotByDeadline();
        (_content as StreamingRequestContent)?.Abort(new OperationCanceledException("The call was aborted."));
        _response?.Dispose();
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_status is null) Abort(); // Not finished: reset rather than leave the stream open.
        // A request body the caller never completed must not keep HttpClient's send pending forever.
        (_content as StreamingRequestContent)?.Abort(new ObjectDisposedException("The call was disposed."));
        _responsePipe?.Complete();
        _response?.Dispose();
        _callerRegistration.Dispose();
        _callCts.Dispose();
    }
}
