using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;
using Google.Protobuf;
using Switch.Grpc.Framing;
using Switch.Grpc.Http2;

namespace Switch.Grpc.Client;

/// <summary>
/// One unary call on the channel's own HTTP/2 connection: the request's one frame, the response's body as it arrives, and
/// how the call ended. Observably the same as the call over HttpClient was: grpc-timeout and a local deadline that resets
/// the stream, cancellation, metadata, Trailers-Only, gzip, the single-response checks, HTTP statuses, lost connections
/// (the shared part is <see cref="ClientExchange"/>). Pooled by its channel: a call allocates no exchange, buffer or timer.
/// </summary>
internal sealed class UnaryExchange : ClientExchange, IValueTaskSource
{
    /// <summary>Sends again of a request the server did not process (REFUSED_STREAM, above a GOAWAY, never sent).</summary>
    private const int MaxUnprocessedRetries = 5;

    private ManualResetValueTaskSourceCore<bool> _done = new() { RunContinuationsAsynchronously = true };
    private byte[] _plainBody = ArrayPool<byte>.Shared.Rent(512);
    private ReadOnlyMemory<byte> _body;
    private SingleResponseBuffer _response;

    public UnaryExchange(GrpcChannel channel) : base(channel)
    {
    }

    public override ReadOnlyMemory<byte> RequestBody => _body;

    /// <summary>
    /// Prepares the call: the request frame (RESOURCE_EXHAUSTED over the send limit), then the headers, deadline and
    /// cancellation (<see cref="ClientExchange.PrepareCall"/>).
    /// </summary>
    public void Prepare<TRequest>(string path, byte[] pathBytes, TRequest request, CallOptions options) where TRequest : class, IMessage<TRequest>
    {
        GrpcChannelOptions channelOptions = _channel.Options;
        int messageBytes = UnaryRequestContent<TRequest>.MessageBytes(request, channelOptions.MaxSendMessageBytes);
        if (channelOptions.CompressRequests)
        {
            _body = UnaryRequestContent<TRequest>.GzipFrame(request, messageBytes, channelOptions.MaxSendMessageBytes);
        }
        else
        {
            int frameBytes = GrpcFrame.HeaderBytes + messageBytes;
            if (_plainBody.Length < frameBytes)
            {
                ArrayPool<byte>.Shared.Return(_plainBody);
                _plainBody = ArrayPool<byte>.Shared.Rent(frameBytes);
            }
            UnaryRequestContent<TRequest>.WritePlainFrame(request, messageBytes, _plainBody.AsSpan(0, frameBytes));
            _body = _plainBody.AsMemory(0, frameBytes);
        }
        PrepareCall(pathBytes, options, _body.Length);
    }

    /// <summary>
    /// Sends the call and waits for its end, on a connection of the channel; a request the server did not process goes
    /// again (bounded). Returns when the call ended with OK; otherwise throws the RpcException the caller sees.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))] // awaited once by its one caller: its box is pooled
    public async ValueTask RunAsync()
    {
        for (int attempt = 0; ; attempt++)
        {
            await StartOnConnectionAsync().ConfigureAwait(false);
            await new ValueTask(this, _done.Version).ConfigureAwait(false);
            if (_end == Http2StreamEnd.Unprocessed && attempt < MaxUnprocessedRetries && Volatile.Read(ref _abortReason) is null) continue;
            break;
        }
        ThrowUnlessOk();
    }

    protected override void ResetResponse()
    {
        base.ResetResponse();
        _done.Reset();
        _response.Release();
        _response.Begin();
    }

    /// <summary>How the ended call looks to its caller: nothing if OK, else the RpcException (same order as the call over
    /// HttpClient: a status the server sent wins; then our deadline; then cancellation; then the transport).</summary>
    private void ThrowUnlessOk()
    {
        if (_refusal is { } refusal) throw refusal;
        if (_trailersOnly)
        {
            Status status = ClientStatus.FromTrailers(_grpcStatus, _grpcMessage);
            if (status.Code != StatusCode.OK) throw new RpcException(status, TrailerMetadata());
            throw SingleResponseBuffer.NoSingleResponse();
        }
        if (_end == Http2StreamEnd.Completed)
        {
            Status status = _trailersReceived ? ClientStatus.FromTrailers(_grpcStatus, _grpcMessage) : ClientStatus.NoStatus;
            if (status.Code != StatusCode.OK) throw new RpcException(status, TrailerMetadata());
            return;
        }
        throw Failure(EndCause());
    }

    /// <summary>The response message, once <see cref="RunAsync"/> returned (the call ended with OK).</summary>
    public TResponse Response<TResponse>(MessageParser<TResponse> parser) where TResponse : class, IMessage<TResponse> =>
        _response.Parse(parser, _channel.Options.MaxReceiveMessageBytes);

    /// <summary>Ends the call's use of the exchange: stops its timer and cancellation, gives back its response buffer.</summary>
    public void Finish()
    {
        FinishCall();
        _response.Release();
        _body = default;
        Debug.Assert(Connection is null);
    }

    public void Dispose()
    {
        DisposeCall();
        ArrayPool<byte>.Shared.Return(_plainBody);
        _plainBody = [];
    }

    // ---- the connection's callbacks (under its lock) ----

    public override bool OnData(ReadOnlySpan<byte> data)
    {
        try
        {
            _response.Append(data, _channel.Options.MaxReceiveMessageBytes, _gzip);
            return true;
        }
        catch (RpcException e)
        {
            _refusal = e;
            return false;
        }
    }

    public override void OnClosed(Http2StreamEnd end, uint errorCode, object? reason)
    {
        _end = end;
        _errorCode = errorCode;
        _endReason = reason;
        _done.SetResult(true);
    }

    void IValueTaskSource.GetResult(short token) => _done.GetResult(token);
    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _done.GetStatus(token);
    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _done.OnCompleted(continuation, state, token, flags);
}
