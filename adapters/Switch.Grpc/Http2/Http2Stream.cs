using Switch.Grpc.Http2.Hpack;

namespace Switch.Grpc.Http2;

/// <summary>How a stream left its connection (see <see cref="Http2Stream.OnClosed"/>).</summary>
internal enum Http2StreamEnd
{
    /// <summary>The response ended (END_STREAM).</summary>
    Completed,
    /// <summary>The peer reset the stream (RST_STREAM with a code other than REFUSED_STREAM).</summary>
    ResetByPeer,
    /// <summary>We reset it: a callback refused what arrived, or <see cref="Http2ClientConnection.Reset"/> was called.</summary>
    ResetLocally,
    /// <summary>The peer processed nothing (REFUSED_STREAM, above a GOAWAY's last stream, or never sent): safe to send again.</summary>
    Unprocessed,
    /// <summary>The connection broke or was closed with the stream open.</summary>
    ConnectionLost,
}

/// <summary>
/// One request/response exchange on an <see cref="Http2ClientConnection"/>: the request (a header block and a body, both
/// kept by the subclass until the stream ends) and the callbacks the connection makes as the response arrives. The
/// connection calls every callback under its lock, from its reader (or from whoever resets the stream): they must be
/// short and never block. After <see cref="OnClosed"/> the connection holds no reference to the stream.
/// </summary>
internal abstract class Http2Stream : IHeaderSink
{
    // The connection's bookkeeping, touched only under its lock.
    internal int StreamId;
    internal long SendWindowBytes;
    internal int RequestBodySentBytes;
    internal int ReceiveUnackedBytes;
    internal long ReceiveWindowBytes; // what the peer may still send on the stream: DATA past it is a FLOW_CONTROL_ERROR
    internal bool HeadersReceived;
    internal bool AwaitingWindow;
    internal bool EndStreamSent;
    internal long WrittenNoticeBurst = -1; // the burst whose write tells the stream its body is out (OnRequestBodyWritten)
    internal Http2ClientConnection? Connection;

    /// <summary>The encoded request header block (HPACK); the connection frames it as HEADERS and CONTINUATION.</summary>
    public abstract ReadOnlyMemory<byte> RequestHeaderBlock { get; }

    /// <summary>The request body queued so far, sent as DATA as the peer's windows allow (from
    /// <see cref="RequestBodySentBytes"/> on); END_STREAM with its last byte once <see cref="RequestBodyEnded"/>.</summary>
    public abstract ReadOnlyMemory<byte> RequestBody { get; }

    /// <summary>No more body will be queued: END_STREAM goes with the last byte (or alone, if all was sent before).</summary>
    public virtual bool RequestBodyEnded => true;

    /// <summary>The stream grants its receive window itself as its reader consumes (<see cref="Http2ClientConnection.Consumed"/>);
    /// otherwise the connection grants it as DATA arrives (the body is bounded by the stream, as a unary response is).</summary>
    public virtual bool GrantsWindowOnConsume => false;

    /// <summary>Called before the stream is (re)sent: clears what a previous attempt received.</summary>
    internal void ResetTransportState()
    {
        StreamId = 0;
        SendWindowBytes = 0;
        RequestBodySentBytes = 0;
        ReceiveUnackedBytes = 0;
        ReceiveWindowBytes = 0;
        HeadersReceived = false;
        AwaitingWindow = false;
        EndStreamSent = false;
        WrittenNoticeBurst = -1;
        Connection = null;
    }

    /// <summary>One decoded field of a response header block (headers, then trailers).</summary>
    public abstract void OnHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value);

    /// <summary>A header block ended. <paramref name="trailers"/>: it is the second block. False resets the stream (CANCEL).</summary>
    public abstract bool OnHeadersEnd(bool trailers, bool endStream);

    /// <summary>Response body bytes (padding removed). False resets the stream (CANCEL).</summary>
    public abstract bool OnData(ReadOnlySpan<byte> data);

    /// <summary>The stream wants <see cref="OnRequestBodyWritten"/>: a writer that waits for its flushes.</summary>
    public virtual bool WantsWrittenNotice => false;

    /// <summary>All of <see cref="RequestBody"/> queued so far (END_STREAM included once ended) was written to the socket:
    /// called from the connection's writer, under its lock, after the burst that held its last byte.</summary>
    public virtual void OnRequestBodyWritten() { }

    /// <summary>Called by <see cref="Http2ClientConnection.Send"/> under the connection's lock, before the queued body is sent:
    /// the stream moves what its writer staged into <see cref="RequestBody"/> (and may drop the sent part, resetting
    /// <see cref="RequestBodySentBytes"/>).</summary>
    public virtual void TakeStagedBody() { }

    /// <summary>The stream is over and forgotten by the connection. <paramref name="errorCode"/>: the peer's RST_STREAM or
    /// GOAWAY code; <paramref name="reason"/>: what <see cref="Http2ClientConnection.Reset"/> was given, or the connection's failure.</summary>
    public abstract void OnClosed(Http2StreamEnd end, uint errorCode, object? reason);
}
