using System.Buffers;
using System.Buffers.Binary;
using System.Buffers.Text;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text;
using Switch.Grpc.Framing;
using Switch.Grpc.Http2;
using Switch.Grpc.Http2.Hpack;

namespace Switch.Grpc.Client;

/// <summary>
/// What every call on the channel's own HTTP/2 connection shares, unary (<see cref="UnaryExchange"/>) or streaming
/// (<see cref="StreamingExchange{TRequest,TResponse}"/>): the request's header block (HPACK, into a rented buffer), the
/// choice of a connection, the response's headers and trailers as they arrive, grpc-timeout and a local deadline that
/// resets the stream, cancellation, and the status a call that did not end with the server's own status ends with.
/// </summary>
internal abstract class ClientExchange : Http2Stream
{
    /// <summary>Starts again of a stream on a connection found unusable between choosing it and starting.</summary>
    protected const int MaxStartAttempts = 5;

    /// <summary>An HPACK literal's bytes besides its name and value: a prefix byte and two length integers of at most 5.</summary>
    private const int LiteralOverheadBytes = 11;

    private static readonly byte[] UserAgentBytes = Encoding.ASCII.GetBytes(GrpcProtocol.UserAgent);
    private static readonly byte[] AcceptEncodingBytes = Encoding.ASCII.GetBytes(GzipMessages.AcceptEncoding);
    protected static readonly object DeadlineReason = new();
    protected static readonly object CancelReason = new();

    protected readonly GrpcChannel _channel;
    private readonly Timer _deadlineTimer;

    // The request.
    private byte[] _headerBlock = ArrayPool<byte>.Shared.Rent(512);
    private int _headerBlockBytes;
    private DateTime? _deadline;
    protected CancellationToken _callerToken;
    private CancellationTokenRegistration _callerRegistration;
    protected object? _abortReason; // DeadlineReason or CancelReason, once

    // The response (written under the connection's lock by its reader, read by the caller once the call ended).
    private int _httpStatus;
    private bool _grpcContentType;
    private string? _contentType;
    protected bool _gzip;
    private string? _unsupportedEncoding;
    protected string? _grpcStatus;
    protected string? _grpcMessage;
    protected bool _trailersOnly;
    protected bool _trailersReceived;
    private byte[] _fields = ArrayPool<byte>.Shared.Rent(256); // metadata as received: [name bytes u16][value bytes i32][name][value]...
    private int _fieldsBytes;
    private int _trailerFieldsStart;
    protected RpcException? _refusal; // what a callback found wrong with the response
    protected Http2StreamEnd _end;
    protected uint _errorCode;
    protected object? _endReason;

    protected ClientExchange(GrpcChannel channel)
    {
        _channel = channel;
        _deadlineTimer = new Timer(static s => ((ClientExchange)s!).OnDeadlineTimer(), this, Timeout.Infinite, Timeout.Infinite);
    }

    public override ReadOnlyMemory<byte> RequestHeaderBlock => _headerBlock.AsMemory(0, _headerBlockBytes);

    /// <summary>
    /// Prepares the call's headers (<paramref name="bodyBytes"/>: the content-length, or -1 for a stream), the deadline
    /// timer and the caller's cancellation. Throws as the call over HttpClient did for a call that cannot start: an already
    /// canceled token (OperationCanceledException) or a deadline already past (DEADLINE_EXCEEDED).
    /// </summary>
    protected void PrepareCall(byte[] pathBytes, CallOptions options, int bodyBytes)
    {
        options.CancellationToken.ThrowIfCancellationRequested();
        DateTime now = DateTime.UtcNow;
        _deadline = options.EffectiveDeadline(now);
        _abortReason = null;
        TimeSpan remaining = _deadline is { } deadline ? deadline - now : Timeout.InfiniteTimeSpan;
        if (_deadline is not null && remaining <= TimeSpan.Zero) throw new RpcException(ClientStatus.DeadlineExceeded);
        EncodeHeaders(pathBytes, _deadline is null ? null : GrpcTimeout.Format(remaining), options.Headers, bodyBytes);
        _callerToken = options.CancellationToken;
        if (_deadline is not null && remaining < CallOptions.MaxTimerTimeout) _deadlineTimer.Change(remaining, Timeout.InfiniteTimeSpan);
        if (options.CancellationToken.CanBeCanceled)
            _callerRegistration = options.CancellationToken.UnsafeRegister(static s => ((ClientExchange)s!).Abort(CancelReason), this);
    }

    private void EncodeHeaders(byte[] pathBytes, string? timeout, Metadata? metadata, int bodyBytes)
    {
        byte[] authority = _channel.AuthorityBytes;
        int boundBytes = 4 + 7 * LiteralOverheadBytes + 10 + pathBytes.Length + authority.Length + GrpcProtocol.ContentType.Length + "tetrailers".Length
            + UserAgentBytes.Length + GrpcProtocol.AcceptEncodingHeader.Length + AcceptEncodingBytes.Length
            + GrpcProtocol.EncodingHeader.Length + GzipMessages.Name.Length + GrpcProtocol.TimeoutHeader.Length + (timeout?.Length ?? 0);
        if (metadata is not null)
            foreach (Metadata.Entry entry in metadata)
                boundBytes += LiteralOverheadBytes + entry.Key.Length + 2 + (entry.ValueBytes is { } bytes ? (bytes.Length + 2) / 3 * 4 : entry.Value!.Length);
        if (_headerBlock.Length < boundBytes)
        {
            ArrayPool<byte>.Shared.Return(_headerBlock);
            _headerBlock = ArrayPool<byte>.Shared.Rent(boundBytes);
        }
        Span<byte> block = _headerBlock.AsSpan(0, boundBytes);
        int at = 0;
        at += Written(HpackEncoder.WriteIndexed(HpackStaticTable.Method_POST, block[at..]));
        at += Written(HpackEncoder.WriteIndexed(_channel.IsTls ? HpackStaticTable.Scheme_https : HpackStaticTable.Scheme_http, block[at..]));
        at += Written(HpackEncoder.WriteLiteralWithIndexedName(HpackStaticTable.Path, pathBytes, block[at..]));
        at += Written(HpackEncoder.WriteLiteralWithIndexedName(HpackStaticTable.Authority, authority, block[at..]));
        at += Written(HpackEncoder.WriteLiteralWithIndexedName(HpackStaticTable.ContentType, "application/grpc"u8, block[at..]));
        if (bodyBytes >= 0)
        {
            Span<byte> length = stackalloc byte[10]; // a unary body's length, as HttpClient sends it: the server knows the end without END_STREAM
            if (!Utf8Formatter.TryFormat(bodyBytes, length, out int lengthBytes)) throw new InvalidOperationException("content-length");
            at += Written(HpackEncoder.WriteLiteralWithIndexedName(HpackStaticTable.ContentLength, length[..lengthBytes], block[at..]));
        }
        at += Written(HpackEncoder.WriteLiteral("te"u8, "trailers"u8, block[at..]));
        at += Written(HpackEncoder.WriteLiteralWithIndexedName(HpackStaticTable.UserAgent, UserAgentBytes, block[at..]));
        at += Written(HpackEncoder.WriteLiteral("grpc-accept-encoding"u8, AcceptEncodingBytes, block[at..]));
        if (_channel.Options.CompressRequests) at += Written(HpackEncoder.WriteLiteral("grpc-encoding"u8, "gzip"u8, block[at..]));
        if (timeout is not null) at += WriteAscii("grpc-timeout"u8, timeout, block[at..]);
        if (metadata is not null)
        {
            // A repeated key goes as one header, its values joined by ", ", as HttpClient sends it (a -bin one is split
            // again on receipt).
            for (int i = 0; i < metadata.Count; i++)
            {
                string key = metadata[i].Key;
                if (FirstIndexOf(metadata, key) != i) continue;
                string value = Metadata.ToWireValue(metadata[i]);
                for (int j = i + 1; j < metadata.Count; j++)
                    if (metadata[j].Key == key) value = value + ", " + Metadata.ToWireValue(metadata[j]);
                at += WriteAscii(key, value, block[at..]);
            }
        }
        _headerBlockBytes = at;
    }

    private static int FirstIndexOf(Metadata metadata, string key)
    {
        for (int i = 0; ; i++)
            if (metadata[i].Key == key) return i;
    }

    /// <summary>A literal whose value is ASCII text (metadata values are printable ASCII or base64).</summary>
    private static int WriteAscii(ReadOnlySpan<byte> name, string value, Span<byte> into)
    {
        byte[] bytes = ArrayPool<byte>.Shared.Rent(Math.Max(value.Length, 1));
        try
        {
            int length = Encoding.ASCII.GetBytes(value, bytes);
            return Written(HpackEncoder.WriteLiteral(name, bytes.AsSpan(0, length), into));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bytes);
        }
    }

    /// <summary>A metadata entry: its key and value are ASCII (<see cref="Metadata"/> checks them).</summary>
    private static int WriteAscii(string name, string value, Span<byte> into)
    {
        byte[] bytes = ArrayPool<byte>.Shared.Rent(name.Length + value.Length);
        try
        {
            int nameBytes = Encoding.ASCII.GetBytes(name, bytes);
            int valueBytes = Encoding.ASCII.GetBytes(value, bytes.AsSpan(nameBytes));
            return Written(HpackEncoder.WriteLiteral(bytes.AsSpan(0, nameBytes), bytes.AsSpan(nameBytes, valueBytes), into));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bytes);
        }
    }

    private static int Written(int bytes)
    {
        Debug.Assert(bytes >= 0, "the header block's bound was too small");
        if (bytes < 0) throw new InvalidOperationException("The request header block outgrew its bound.");
        return bytes;
    }

    /// <summary>
    /// Starts the stream on a connection of the channel (opened if need be), trying another if the one chosen went away
    /// meanwhile (bounded). Throws the RpcException the caller sees when there is none, or too many calls wait for a slot.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))] // awaited once by its one caller: its box is pooled
    protected async ValueTask<Http2ClientConnection> StartOnConnectionAsync()
    {
        for (int attempt = 0; ; attempt++)
        {
            Http2ClientConnection connection;
            try
            {
                // A connection being opened is awaited, then the choice made again: the calls that waited for it may
                // fill it, and the next go to another (at most the channel's limit of connections, then they wait).
                ValueTask<Http2ClientConnection> pending = _channel.ConnectionAsync();
                while (!pending.IsCompletedSuccessfully)
                {
                    await WaitForConnectionAsync(pending).ConfigureAwait(false);
                    pending = _channel.ConnectionAsync();
                }
                connection = pending.Result;
            }
            catch (Exception e)
            {
                throw Failure(e);
            }
            ResetResponse();
            Http2StartResult started = connection.TryStart(this);
            if (started == Http2StartResult.Unusable)
            {
                if (attempt < MaxStartAttempts) continue; // gone away between choosing and starting: another one
                throw Failure(new IOException("No usable HTTP/2 connection to the server."));
            }
            if (started == Http2StartResult.TooManyWaiting)
                throw new RpcException(StatusCode.ResourceExhausted, "Too many calls waiting for a stream on the connection to the server.");
            // A deadline or cancellation that came while no connection held the stream resets it now.
            if (Volatile.Read(ref _abortReason) is { } reason) connection.Reset(this, reason);
            return connection;
        }
    }

    /// <summary>A connection still being opened, awaited no longer than the call's deadline and cancellation allow.</summary>
    private async Task<Http2ClientConnection> WaitForConnectionAsync(ValueTask<Http2ClientConnection> pending)
    {
        TimeSpan remaining = _deadline is { } deadline ? deadline - DateTime.UtcNow : Timeout.InfiniteTimeSpan;
        if (_deadline is not null && remaining <= TimeSpan.Zero) throw new TimeoutException();
        if (remaining >= CallOptions.MaxTimerTimeout) remaining = Timeout.InfiniteTimeSpan;
        return await pending.AsTask().WaitAsync(remaining, _callerToken).ConfigureAwait(false);
    }

    /// <summary>Clears what a previous attempt received, before the stream is (re)sent.</summary>
    protected virtual void ResetResponse()
    {
        ResetTransportState();
        _httpStatus = 0;
        _grpcContentType = false;
        _contentType = null;
        _gzip = false;
        _unsupportedEncoding = null;
        _grpcStatus = null;
        _grpcMessage = null;
        _trailersOnly = false;
        _trailersReceived = false;
        _fieldsBytes = 0;
        _trailerFieldsStart = -1;
        _refusal = null;
        _end = default;
        _errorCode = 0;
        _endReason = null;
    }

    /// <summary>Why a stream that did not complete ended, as the transport saw it (see <see cref="Failure"/>).</summary>
    protected Exception EndCause() => _end switch
    {
        Http2StreamEnd.ResetByPeer => new Http2ConnectionException(_errorCode, $"The server reset the stream (HTTP/2 error code {_errorCode})."),
        Http2StreamEnd.Unprocessed => new IOException(_errorCode == Http2ErrorCode.RefusedStream
            ? "The server refused the stream (REFUSED_STREAM)."
            : "The server is going away (GOAWAY): the call was not processed."),
        _ => _endReason as Exception ?? new IOException("The call ended without a response."),
    };

    /// <summary>A failure without the server's status: our deadline, then cancellation, then the transport's reason.</summary>
    protected RpcException Failure(Exception cause)
    {
        object? reason = Volatile.Read(ref _abortReason);
        if (reason == DeadlineReason || cause is TimeoutException)
            return new RpcException(ClientStatus.DeadlineExceeded, null, cause);
        if (reason == CancelReason || _callerToken.IsCancellationRequested || cause is OperationCanceledException)
            return new RpcException(ClientStatus.Cancelled, null, cause);
        if (_end == Http2StreamEnd.ResetByPeer) return new RpcException(ClientStatus.FromHttp2Error(_errorCode, cause.Message), null, cause);
        if (_end == Http2StreamEnd.Unprocessed)
            return new RpcException(_errorCode == Http2ErrorCode.RefusedStream
                ? ClientStatus.FromHttp2Error(_errorCode, cause.Message)
                : new Status(StatusCode.Unavailable, cause.Message), null, cause);
        return new RpcException(ClientStatus.FromTransport(cause), null, cause);
    }

    /// <summary>The response headers as metadata (none for a Trailers-Only response).</summary>
    public Metadata ResponseHeaderMetadata() =>
        _trailersOnly ? new Metadata() : ToMetadata(0, _trailerFieldsStart < 0 ? _fieldsBytes : _trailerFieldsStart);

    /// <summary>The trailers as metadata (a Trailers-Only response's headers are its trailers).</summary>
    public Metadata TrailerMetadata() =>
        _trailersOnly ? ToMetadata(0, _fieldsBytes) : _trailerFieldsStart < 0 ? new Metadata() : ToMetadata(_trailerFieldsStart, _fieldsBytes);

    private Metadata ToMetadata(int from, int to)
    {
        var metadata = new Metadata();
        while (from < to)
        {
            int nameBytes = BinaryPrimitives.ReadUInt16LittleEndian(_fields.AsSpan(from));
            int valueBytes = BinaryPrimitives.ReadInt32LittleEndian(_fields.AsSpan(from + 2));
            from += 6;
            string name = Encoding.Latin1.GetString(_fields, from, nameBytes);
            string value = Encoding.Latin1.GetString(_fields, from + nameBytes, valueBytes);
            metadata.AddFromWire(name, value);
            from += nameBytes + valueBytes;
        }
        return metadata;
    }

    // ---- deadline and cancellation ----

    private void OnDeadlineTimer()
    {
        // A timer armed for an earlier call on this pooled exchange may fire late: only this call's passed deadline counts.
        if (_deadline is not { } deadline) return;
        TimeSpan remaining = deadline - DateTime.UtcNow;
        if (remaining > TimeSpan.Zero)
        {
            _deadlineTimer.Change(remaining, Timeout.InfiniteTimeSpan);
            return;
        }
        Abort(DeadlineReason);
    }

    protected void Abort(object reason)
    {
        if (Interlocked.CompareExchange(ref _abortReason, reason, null) is not null) return;
        Connection?.Reset(this, reason);
        OnAborted();
    }

    /// <summary>The call was aborted (deadline, cancellation): what the subclass must wake besides the stream's reset.</summary>
    protected virtual void OnAborted() { }

    /// <summary>Ends the call's use of the exchange: stops its timer and the caller's cancellation.</summary>
    protected void FinishCall()
    {
        _deadlineTimer.Change(Timeout.Infinite, Timeout.Infinite);
        _deadline = null;
        _callerRegistration.Dispose(); // waits for a running callback: none touches the exchange after this
        _callerRegistration = default;
        _callerToken = default;
    }

    /// <summary>Gives back the exchange's timer and buffers: it is not used again.</summary>
    protected void DisposeCall(bool returnBuffers = true)
    {
        _deadlineTimer.Dispose();
        if (!returnBuffers) return; // still possibly in a connection's hands: left to the collector
        ArrayPool<byte>.Shared.Return(_headerBlock);
        ArrayPool<byte>.Shared.Return(_fields);
        _headerBlock = _fields = [];
    }

    // ---- the connection's callbacks (under its lock) ----

    public override void OnHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        if (!HeadersReceived)
        {
            if (name.SequenceEqual(":status"u8))
            {
                _httpStatus = ParseStatus(value);
                return;
            }
            if (name.SequenceEqual("content-type"u8))
            {
                _grpcContentType = IsGrpcContentType(value);
                if (!_grpcContentType) _contentType = Encoding.Latin1.GetString(value);
                return;
            }
            if (name.SequenceEqual("grpc-encoding"u8))
            {
                if (!GzipMessages.TryParseEncoding(KnownEncoding(value) ?? Encoding.Latin1.GetString(value), out _gzip))
                    _unsupportedEncoding = Encoding.Latin1.GetString(value);
                return;
            }
        }
        if (name.SequenceEqual("grpc-status"u8))
        {
            _grpcStatus = value.SequenceEqual("0"u8) ? "0" : Encoding.Latin1.GetString(value);
            return;
        }
        if (name.SequenceEqual("grpc-message"u8))
        {
            _grpcMessage = Encoding.Latin1.GetString(value);
            return;
        }
        if (name.IsEmpty || name[0] == (byte)':') return; // pseudo headers are not metadata
        AddField(name, value);
    }

    /// <summary>The two encodings this layer names, without making a string; null for any other.</summary>
    private static string? KnownEncoding(ReadOnlySpan<byte> value)
    {
        if (value.SequenceEqual("identity"u8)) return GrpcProtocol.IdentityEncoding;
        if (value.SequenceEqual("gzip"u8)) return GzipMessages.Name;
        return null;
    }

    private static int ParseStatus(ReadOnlySpan<byte> value)
    {
        int status = 0;
        if (value.Length != 3) return -1;
        foreach (byte digit in value)
        {
            if (digit is < (byte)'0' or > (byte)'9') return -1;
            status = status * 10 + (digit - '0');
        }
        return status;
    }

    private static bool IsGrpcContentType(ReadOnlySpan<byte> value)
    {
        Span<char> text = stackalloc char[Math.Min(value.Length, 256)];
        if (value.Length > text.Length) return false; // no gRPC content type is that long
        Encoding.Latin1.GetChars(value, text);
        return GrpcProtocol.IsGrpcContentType(text);
    }

    private void AddField(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        int needed = _fieldsBytes + 6 + name.Length + value.Length;
        if (needed > _fields.Length)
        {
            byte[] bigger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, 2 * _fields.Length));
            _fields.AsSpan(0, _fieldsBytes).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_fields);
            _fields = bigger;
        }
        Span<byte> field = _fields.AsSpan(_fieldsBytes);
        BinaryPrimitives.WriteUInt16LittleEndian(field, (ushort)name.Length);
        BinaryPrimitives.WriteInt32LittleEndian(field[2..], value.Length);
        name.CopyTo(field[6..]);
        value.CopyTo(field[(6 + name.Length)..]);
        _fieldsBytes = needed;
    }

    public override bool OnHeadersEnd(bool trailers, bool endStream)
    {
        if (trailers)
        {
            _trailersReceived = true;
            return true;
        }
        _trailerFieldsStart = -1;
        // The checks, in order, of the call over HttpClient when its response headers arrive. A refusal resets the
        // stream unless the response already ended (nothing may be sent on a closed stream).
        if (_httpStatus != 200)
        {
            _refusal = new RpcException(ClientStatus.BadHttpStatus(_httpStatus));
            return endStream;
        }
        if (_grpcStatus is not null)
        {
            _trailersOnly = true; // Trailers-Only: the status came in the headers and the body is empty
            _trailersReceived = true;
            return endStream;
        }
        if (!_grpcContentType)
        {
            _refusal = new RpcException(ClientStatus.BadContentType(_contentType));
            return endStream;
        }
        if (_unsupportedEncoding is not null)
        {
            _refusal = new RpcException(ClientStatus.BadEncoding(_unsupportedEncoding));
            return endStream;
        }
        _trailerFieldsStart = _fieldsBytes; // what comes next are the trailers
        return true;
    }

}
