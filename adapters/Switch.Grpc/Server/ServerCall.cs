using System.Diagnostics;
using System.Globalization;
using Google.Protobuf;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Switch.Grpc.Framing;

namespace Switch.Grpc.Server;

/// <summary>
/// The response side of one server call: buffered message writes, the single completion (status in trailers,
/// or Trailers-Only when nothing was sent yet), and the deadline timer. A gate serializes the handler's writes
/// against the deadline path so the status is written exactly once and never interleaves with a frame.
/// </summary>
internal sealed class ServerCall
{
    private static readonly string[] StatusStrings =
        Enumerable.Range(0, 17).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray();

    // CancelAfter accepts at most uint.MaxValue-1 ms (~49 days); longer deadlines are in effect infinite.
    private static readonly TimeSpan MaxTimerTimeout = TimeSpan.FromDays(49);

    private readonly HttpContext _http;
    private readonly GrpcServerOptions _options;
    private readonly SemaphoreSlim _gate = new(1, 1);
    // With a deadline, one source per call is the call's token: the timer cancels it, and so does the client going
    // away (through _abortRegistration). A linked source plus a timer source cost two allocations per call.
    private readonly CancellationTokenSource? _callCts;
    private readonly CancellationTokenRegistration _abortRegistration;
    private readonly CancellationTokenRegistration _deadlineRegistration;
    private volatile bool _clientGone;
    private Task? _deadlineCompletion;
    private bool _completed;
    private bool _responseStarted;
    private int _unflushedBytes;

    public ServerCall(HttpContext http, GrpcServerOptions options, string method, IHeaderDictionary requestHeaders, TimeSpan? timeout,
        bool gzipRequests, bool gzipResponses)
    {
        _http = http;
        GzipRequests = gzipRequests;
        GzipResponses = gzipResponses;
        _options = options;
        CancellationToken token = http.RequestAborted;
        DateTime deadline = DateTime.MaxValue;
        if (timeout is { } t)
        {
            deadline = GrpcTimeout.DeadlineFrom(DateTime.UtcNow, t);
            if (t < MaxTimerTimeout)
            {
                _callCts = new CancellationTokenSource();
                token = _callCts.Token;
            }
        }
        var connection = http.Connection;
        // Kestrel answers connection features (the connection's lifetime) through the request's feature collection.
        CancellationToken connectionClosed = http.Features.Get<IConnectionLifetimeFeature>()?.ConnectionClosed ?? default;
        Context = new ServerCallContext(method, requestHeaders, deadline, connection.RemoteIpAddress, connection.RemotePort,
            connection.ClientCertificate, token, connection.Id, connectionClosed);
        if (_callCts is not null)
        {
            _abortRegistration = http.RequestAborted.UnsafeRegister(static s => ((ServerCall)s!).OnClientGone(), this);
            _deadlineRegistration = _callCts.Token.Register(static s => ((ServerCall)s!).OnCanceled(), this);
            _callCts.CancelAfter(timeout!.Value);
        }
    }

    public ServerCallContext Context { get; }

    // Exact without ordering against other callbacks on the token: _clientGone is set before the client's Cancel.
    public bool DeadlineExceeded => _callCts is { IsCancellationRequested: true } && !_clientGone;

    public int MaxReceiveMessageBytes => _options.MaxReceiveMessageBytes;

    public StatusCode MalformedRequestCode => _options.MalformedRequestCode;

    /// <summary>The request's grpc-encoding is gzip.</summary>
    public bool GzipRequests { get; }

    /// <summary>Responses go out in gzip (the client accepts it and the options allow it).</summary>
    public bool GzipResponses { get; }

    public HttpContext Http => _http;

    /// <summary>Response messages written so far (under the gate).</summary>
    public int MessagesWritten { get; private set; }

    private void OnClientGone()
    {
        _clientGone = true; // Before Cancel: OnCanceled must not take the client's leaving for the deadline.
        try { _callCts!.Cancel(); }
        catch (ObjectDisposedException) { }
    }

    private void OnCanceled()
    {
        if (!_clientGone) OnDeadline();
    }

    private void OnDeadline()
    {
        // Off the timer thread: the completion may wait for a write in progress (which the canceled token ends).
        _deadlineCompletion = Task.Run(() => CompleteAsync(new Status(StatusCode.DeadlineExceeded, "Deadline Exceeded"), null));
    }

    /// <summary>Buffers one framed message; flushes when asked or when the buffer passes its bound.</summary>
    public ValueTask WriteAsync<T>(T message, bool flush, CancellationToken cancellationToken) where T : IMessage<T>
    {
        ArgumentNullException.ThrowIfNull(message);
        return WriteFrameAsync(new MessageFrame<T>(message), flush, cancellationToken);
    }

    /// <summary>As <see cref="WriteAsync{T}"/>, for a message the caller encodes itself (no message object on a hot path).</summary>
    public ValueTask WriteEncodedAsync<TEncoder>(TEncoder encoder, bool flush, CancellationToken cancellationToken) where TEncoder : struct, IMessageEncoder =>
        WriteFrameAsync(new EncodedFrame<TEncoder>(encoder), flush, cancellationToken);

    private async ValueTask WriteFrameAsync<TFrame>(TFrame frame, bool flush, CancellationToken cancellationToken) where TFrame : struct, IOutgoingFrame
    {
        if (!cancellationToken.CanBeCanceled) cancellationToken = Context.CancellationToken;
        if (!_gate.Wait(0)) await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ThrowIfCompleted();
            HttpResponse response = _http.Response;
            if (!_responseStarted) StartResponse(response);
            _unflushedBytes += frame.Write(response.BodyWriter, _options.MaxSendMessageBytes, GzipResponses);
            MessagesWritten++;
            if (flush || _unflushedBytes >= _options.MaxBufferedWriteBytes)
                await FlushUnderGateAsync(response, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        if (!cancellationToken.CanBeCanceled) cancellationToken = Context.CancellationToken;
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ThrowIfCompleted();
            HttpResponse response = _http.Response;
            if (!_responseStarted) StartResponse(response);
            await FlushUnderGateAsync(response, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async ValueTask FlushUnderGateAsync(HttpResponse response, CancellationToken cancellationToken)
    {
        _unflushedBytes = 0;
        await response.BodyWriter.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private void ThrowIfCompleted()
    {
        if (!_completed) return;
        if (DeadlineExceeded) throw new OperationCanceledException("The call's deadline was exceeded.", Context.CancellationToken);
        throw new InvalidOperationException("The call has already completed.");
    }

    private void StartResponse(HttpResponse response)
    {
        Debug.Assert(!_responseStarted && !_completed);
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = GrpcProtocol.ContentType;
        if (GzipResponses) response.Headers[GrpcProtocol.EncodingHeader] = GzipMessages.Name;
        AppendHeaders(response.Headers, Context.ResponseHeadersAdded);
        _responseStarted = true;
    }

    /// <summary>
    /// Sends the status exactly once: in trailers after messages, or Trailers-Only (status in the headers,
    /// end of stream) when nothing was sent. Later calls are no-ops: the first outcome wins.
    /// </summary>
    public async Task CompleteAsync(Status status, Metadata? extraTrailers)
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_completed) return;
            _completed = true;
            _options.OnCallCompleted?.Invoke(status.Code);
            HttpResponse response = _http.Response;
            string code = StatusStrings[(int)status.Code];
            string? message = status.Detail.Length == 0 ? null : StatusMessageEncoding.Encode(status.Detail);
            if (!_responseStarted)
            {
                response.StatusCode = StatusCodes.Status200OK;
                response.ContentType = GrpcProtocol.ContentType;
                var headers = response.Headers;
                AppendHeaders(headers, Context.ResponseHeadersAdded);
                AppendHeaders(headers, Context.ResponseTrailersAdded);
                AppendHeaders(headers, extraTrailers);
                headers[GrpcProtocol.StatusHeader] = code;
                if (message is not null) headers[GrpcProtocol.MessageHeader] = message;
            }
            else
            {
                AppendTrailers(response, Context.ResponseTrailersAdded);
                AppendTrailers(response, extraTrailers);
                response.AppendTrailer(GrpcProtocol.StatusHeader, code);
                if (message is not null) response.AppendTrailer(GrpcProtocol.MessageHeader, message);
            }
            await response.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception) when (_http.RequestAborted.IsCancellationRequested)
        {
            // The client is gone; there is no one to tell.
        }
        finally
        {
            _gate.Release();
        }
    }

    private static void AppendHeaders(IHeaderDictionary headers, Metadata? metadata)
    {
        if (metadata is null) return;
        foreach (var entry in metadata) headers.Append(entry.Key, Metadata.ToWireValue(entry));
    }

    private static void AppendTrailers(HttpResponse response, Metadata? metadata)
    {
        if (metadata is null) return;
        foreach (var entry in metadata) response.AppendTrailer(entry.Key, Metadata.ToWireValue(entry));
    }

    /// <summary>Stops the deadline timer and waits for a deadline completion already under way.</summary>
    public async ValueTask DisposeAsync()
    {
        Context.EndOfCall();
        await _abortRegistration.DisposeAsync().ConfigureAwait(false);
        await _deadlineRegistration.DisposeAsync().ConfigureAwait(false);
        if (_deadlineCompletion is { } pending)
        {
            try { await pending.ConfigureAwait(false); }
            catch (Exception) { /* CompleteAsync already swallows a gone client; nothing else is left to report. */ }
        }
        _callCts?.Dispose();
    }
}
