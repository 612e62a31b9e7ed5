using System.Globalization;
using System.Net;

namespace Switch.Grpc.Client;

/// <summary>
/// The statuses a client call ends with when the server sent none of its own: HTTP statuses, HTTP/2 error codes, transport
/// failures, our deadline and cancellation. Shared by the call over HttpClient and the one over our own connection, so
/// both say the same thing for the same failure.
/// </summary>
internal static class ClientStatus
{
    public static readonly Status DeadlineExceeded = new(StatusCode.DeadlineExceeded, "Deadline Exceeded");

    public static readonly Status Cancelled = new(StatusCode.Cancelled, "Call canceled by the client.");

    /// <summary>gRPC's mapping for responses that are not HTTP 200 (http-grpc-status-mapping.md).</summary>
    public static StatusCode FromHttpStatus(HttpStatusCode code) => (int)code switch
    {
        400 => StatusCode.Internal,
        401 => StatusCode.Unauthenticated,
        403 => StatusCode.PermissionDenied,
        404 => StatusCode.Unimplemented,
        429 or 502 or 503 or 504 => StatusCode.Unavailable,
        _ => StatusCode.Unknown,
    };

    public static Status BadHttpStatus(int code) =>
        new(FromHttpStatus((HttpStatusCode)code), $"Bad gRPC response. HTTP status code: {code}");

    public static Status BadContentType(string? contentType) =>
        new(StatusCode.Internal, $"Bad gRPC response. Invalid content-type value: {contentType}");

    public static Status BadEncoding(string? encoding) =>
        new(StatusCode.Internal, $"Bad gRPC response. Unsupported grpc-encoding: {encoding}");

    public static readonly Status NoStatus = new(StatusCode.Unknown, "No grpc-status found on response.");

    /// <summary>The status of grpc-status and grpc-message (percent-encoded) as received; <paramref name="code"/> null: absent.</summary>
    public static Status FromTrailers(string? code, string? message)
    {
        if (code is null) return NoStatus;
        if (!int.TryParse(code, NumberStyles.None, CultureInfo.InvariantCulture, out int value))
            return new Status(StatusCode.Unknown, $"Unexpected grpc-status value: {code}");
        return new Status((StatusCode)value, message is null ? "" : StatusMessageEncoding.Decode(message));
    }

    /// <summary>A stream ended by an HTTP/2 error code (RST_STREAM, or a connection error).</summary>
    public static Status FromHttp2Error(long errorCode, string message) => errorCode switch
    {
        0x7 => new Status(StatusCode.Unavailable, "Stream refused by the server (REFUSED_STREAM)."),
        0x8 => new Status(StatusCode.Cancelled, "Stream reset by the server (CANCEL)."),
        0xb => new Status(StatusCode.ResourceExhausted, "Stream reset by the server (ENHANCE_YOUR_CALM)."),
        0xc => new Status(StatusCode.PermissionDenied, "Stream reset by the server (INADEQUATE_SECURITY)."),
        _ => new Status(StatusCode.Internal, $"HTTP/2 error {errorCode}: {message}"),
    };

    /// <summary>A transport failure: HTTP/2 errors by their code, a failed TLS handshake by its reason, I/O as UNAVAILABLE.</summary>
    public static Status FromTransport(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            if (x is HttpProtocolException protocol) return FromHttp2Error(protocol.ErrorCode, protocol.Message);
            if (x is Http2.Http2ConnectionException connection && connection.ErrorCode != Http2.Http2ErrorCode.NoError)
                return FromHttp2Error(connection.ErrorCode, connection.Message);
        }
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            // The handshake's own reason (e.g. an untrusted certificate chain) is what the caller needs to fix it.
            if (x is System.Security.Authentication.AuthenticationException tls)
                return new Status(StatusCode.Unavailable, "TLS handshake failed: " + tls.Message);
        }
        if (e is HttpRequestException or IOException)
            return new Status(StatusCode.Unavailable, "Error talking to the server: " + e.Message);
        return new Status(StatusCode.Unknown, "Error in the call: " + e.Message);
    }
}
