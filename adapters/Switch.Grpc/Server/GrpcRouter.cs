using System.Buffers;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Switch.Grpc.Framing;

namespace Switch.Grpc.Server;

public delegate ValueTask<TResponse> UnaryHandler<TRequest, TResponse>(TRequest request, ServerCallContext context);
public delegate ValueTask ServerStreamingHandler<TRequest, TResponse>(TRequest request, ServerResponseStream<TResponse> responses, ServerCallContext context)
    where TResponse : class, IMessage<TResponse>;
public delegate ValueTask<TResponse> ClientStreamingHandler<TRequest, TResponse>(ServerRequestStream<TRequest> requests, ServerCallContext context)
    where TRequest : class, IMessage<TRequest>;
public delegate ValueTask DuplexStreamingHandler<TRequest, TResponse>(ServerRequestStream<TRequest> requests, ServerResponseStream<TResponse> responses, ServerCallContext context)
    where TRequest : class, IMessage<TRequest>
    where TResponse : class, IMessage<TResponse>;
/// <summary>A unary call whose request the handler decodes from its bytes and whose response it encodes itself
/// (<see cref="ServerRawRequest"/>): no message object either way.</summary>
public delegate ValueTask RawUnaryHandler(ServerRawRequest request, ServerCallContext context);
/// <summary>A duplex call whose requests the handler decodes from their bytes itself (<see cref="ServerRawRequestStream"/>).</summary>
public delegate ValueTask RawDuplexStreamingHandler<TResponse>(ServerRawRequestStream requests, ServerResponseStream<TResponse> responses, ServerCallContext context)
    where TResponse : class, IMessage<TResponse>;

/// <summary>
/// Maps "/package.Service/Method" to handlers and runs each call as an ASP.NET Core terminal request delegate
/// (<see cref="HandleAsync"/>). Checks the HTTP envelope, reads the deadline, turns every handler outcome into
/// exactly one gRPC status. Map all methods before serving; the route table is read-only afterwards.
/// </summary>
public sealed class GrpcRouter
{
    private readonly Dictionary<string, Func<ServerCall, Task>> _routes = new(StringComparer.Ordinal);
    private readonly GrpcServerOptions _options;

    public GrpcRouter(GrpcServerOptions? options = null)
    {
        _options = options ?? new GrpcServerOptions();
        _options.Validate();
    }

    public GrpcServerOptions Options => _options;

    public IReadOnlyCollection<string> Paths => _routes.Keys;

    public GrpcRouter MapUnary<TReq, TResp>(GrpcMethod<TReq, TResp> method, UnaryHandler<TReq, TResp> handler)
        where TReq : class, IMessage<TReq> where TResp : class, IMessage<TResp>
    {
        Expect(method.Type == MethodType.Unary, method.Path);
        return Add(method.Path, async call =>
        {
            TReq request = await ReadSingleRequestAsync(call, method.RequestParser).ConfigureAwait(false);
            TResp response = await handler(request, call.Context).ConfigureAwait(false);
            await call.WriteAsync(response, flush: false, default).ConfigureAwait(false); // Sent with the status: one flush.
        });
    }

    /// <summary>
    /// As <see cref="MapUnary"/>, handing the handler the request message's bytes rather than a parsed
    /// <typeparamref name="TReq"/>, and taking its response as an encoder (<see cref="ServerRawRequest.RespondAsync"/>)
    /// rather than a <typeparamref name="TResp"/>, for a hot path that decodes and encodes its own structures. The handler
    /// owns the wire rules then (unknown fields, malformed bytes: <see cref="ServerRawRequest.Refuse"/>); every other part
    /// of the call (framing, limits, gzip, deadline, the status) is the typed path's. The bytes are a copy the router rents
    /// for the call (the end of the request is read past the message before the handler runs, which frees the body's
    /// buffer), given back once the handler's task has ended: a handler must be done with them by then. The response is
    /// written, not returned, so no async layer carries the encoder's fields in its box.
    /// </summary>
    public GrpcRouter MapUnaryRaw<TReq, TResp>(GrpcMethod<TReq, TResp> method, RawUnaryHandler handler)
        where TReq : class, IMessage<TReq> where TResp : class, IMessage<TResp>
    {
        Expect(method.Type == MethodType.Unary, method.Path);
        return Add(method.Path, async call =>
        {
            GrpcFrameReader frames = Frames(call);
            (byte[] rented, int length) = await ReadSingleRawAsync(frames, call.Context.CancellationToken).ConfigureAwait(false);
            try
            {
                await handler(new ServerRawRequest(call, frames, rented.AsMemory(0, length)), call.Context).ConfigureAwait(false);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
            // A handler that returns without a status must have answered (a bug otherwise: UNKNOWN, as a handler's exception).
            if (call.MessagesWritten != 1) throw new InvalidOperationException($"the unary handler of {method.Path} returned without a response");
        });
    }

    public GrpcRouter MapServerStreaming<TReq, TResp>(GrpcMethod<TReq, TResp> method, ServerStreamingHandler<TReq, TResp> handler)
        where TReq : class, IMessage<TReq> where TResp : class, IMessage<TResp>
    {
        Expect(method.Type == MethodType.ServerStreaming, method.Path);
        return Add(method.Path, async call =>
        {
            TReq request = await ReadSingleRequestAsync(call, method.RequestParser).ConfigureAwait(false);
            await handler(request, new ServerResponseStream<TResp>(call), call.Context).ConfigureAwait(false);
        });
    }

    public GrpcRouter MapClientStreaming<TReq, TResp>(GrpcMethod<TReq, TResp> method, ClientStreamingHandler<TReq, TResp> handler)
        where TReq : class, IMessage<TReq> where TResp : class, IMessage<TResp>
    {
        Expect(method.Type == MethodType.ClientStreaming, method.Path);
        return Add(method.Path, async call =>
        {
            TResp response = await handler(RequestStream(call, method.RequestParser), call.Context).ConfigureAwait(false);
            await call.WriteAsync(response, flush: false, default).ConfigureAwait(false);
        });
    }

    public GrpcRouter MapDuplexStreaming<TReq, TResp>(GrpcMethod<TReq, TResp> method, DuplexStreamingHandler<TReq, TResp> handler)
        where TReq : class, IMessage<TReq> where TResp : class, IMessage<TResp>
    {
        Expect(method.Type == MethodType.DuplexStreaming, method.Path);
        return Add(method.Path, call =>
            handler(RequestStream(call, method.RequestParser), new ServerResponseStream<TResp>(call), call.Context).AsTask());
    }

    /// <summary>
    /// As <see cref="MapDuplexStreaming"/>, handing the handler each request message's bytes rather than a parsed
    /// <typeparamref name="TReq"/>, for a hot path that decodes them straight into its own structures. The handler owns
    /// the wire rules then (unknown fields, malformed bytes: <see cref="ServerRawRequestStream.Refuse"/>); every other
    /// part of the call (framing, limits, gzip, deadline, status) is the same as the typed path's.
    /// </summary>
    public GrpcRouter MapDuplexStreamingRaw<TReq, TResp>(GrpcMethod<TReq, TResp> method, RawDuplexStreamingHandler<TResp> handler)
        where TReq : class, IMessage<TReq> where TResp : class, IMessage<TResp>
    {
        Expect(method.Type == MethodType.DuplexStreaming, method.Path);
        return Add(method.Path, call =>
            handler(new ServerRawRequestStream(Frames(call), call.Context.CancellationToken), new ServerResponseStream<TResp>(call), call.Context).AsTask());
    }

    private static void Expect(bool condition, string path)
    {
        if (!condition) throw new ArgumentException($"Method {path} is mapped with the wrong call type.");
    }

    private GrpcRouter Add(string path, Func<ServerCall, Task> invoker)
    {
        if (!_routes.TryAdd(path, invoker)) throw new InvalidOperationException($"Method {path} is already mapped.");
        return this;
    }

    private static GrpcFrameReader Frames(ServerCall call) =>
        new(call.Http.Request.BodyReader, call.MaxReceiveMessageBytes, call.GzipRequests, call.MalformedRequestCode);

    private static ServerRequestStream<T> RequestStream<T>(ServerCall call, MessageParser<T> parser) where T : class, IMessage<T> =>
        new(new GrpcMessageReader<T>(call.Http.Request.BodyReader, parser, call.MaxReceiveMessageBytes, call.GzipRequests, call.MalformedRequestCode), call.Context.CancellationToken);

    private static async Task<T> ReadSingleRequestAsync<T>(ServerCall call, MessageParser<T> parser) where T : class, IMessage<T>
    {
        var reader = new GrpcMessageReader<T>(call.Http.Request.BodyReader, parser, call.MaxReceiveMessageBytes, call.GzipRequests, call.MalformedRequestCode);
        CancellationToken token = call.Context.CancellationToken;
        T request = await reader.ReadAsync(token).ConfigureAwait(false)
            ?? throw new RpcException(StatusCode.Internal, "Request stream ended without a message.");
        if (await reader.ReadAsync(token).ConfigureAwait(false) is not null)
            throw new RpcException(StatusCode.Internal, "More than one request message for a single-request method.");
        return request;
    }

    /// <summary>The one request message's bytes, copied into a rented array (the caller gives it back); the typed read's
    /// refusals: no message, a second one, a bad frame.</summary>
    private static async ValueTask<(byte[] Rented, int Length)> ReadSingleRawAsync(GrpcFrameReader frames, CancellationToken token)
    {
        byte[]? rented = null;
        int length = 0;
        try
        {
            while (true)
            {
                if (frames.TryNext(out bool ended))
                {
                    if (rented is not null) throw new RpcException(StatusCode.Internal, "More than one request message for a single-request method.");
                    ReadOnlySequence<byte> message = frames.Message; // valid until the next take: copied before it
                    length = checked((int)message.Length);
                    rented = ArrayPool<byte>.Shared.Rent(Math.Max(1, length));
                    message.CopyTo(rented);
                    continue;
                }
                if (ended) return (rented ?? throw new RpcException(StatusCode.Internal, "Request stream ended without a message."), length);
                frames.Hold(await frames.ReadAsync(token).ConfigureAwait(false));
            }
        }
        catch
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
            throw;
        }
    }

    /// <summary>The request delegate: use as Kestrel's only (terminal) middleware, e.g. app.Run(router.HandleAsync).</summary>
    public async Task HandleAsync(HttpContext http)
    {
        HttpRequest request = http.Request;
        if (!HttpMethods.IsPost(request.Method))
        {
            http.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            return;
        }
        if (!GrpcProtocol.IsGrpcContentType(request.ContentType))
        {
            // PROTOCOL-HTTP2: a server receiving a non-gRPC content-type answers HTTP 415.
            http.Response.StatusCode = StatusCodes.Status415UnsupportedMediaType;
            return;
        }
        if (!HttpProtocol.IsHttp2(request.Protocol))
        {
            http.Response.StatusCode = StatusCodes.Status426UpgradeRequired; // Trailers need HTTP/2.
            return;
        }

        string path = request.Path.Value ?? "";
        if (!_routes.TryGetValue(path, out var invoker))
        {
            if (_options.UnknownMethodStatus is { } unknown) await TrailersOnlyAsync(http, unknown, _options.UnknownMethodTrailers).ConfigureAwait(false);
            else await TrailersOnlyAsync(http, new Status(StatusCode.Unimplemented, $"Method not found: {path}")).ConfigureAwait(false);
            return;
        }

        string? encoding = request.Headers[GrpcProtocol.EncodingHeader];
        if (!GzipMessages.TryParseEncoding(encoding, out bool gzipRequests))
        {
            // Compression spec: an unsupported message encoding is UNIMPLEMENTED, advertising what we accept.
            http.Response.Headers[GrpcProtocol.AcceptEncodingHeader] = GzipMessages.AcceptEncoding;
            await TrailersOnlyAsync(http, new Status(StatusCode.Unimplemented, $"Unsupported grpc-encoding '{encoding}'.")).ConfigureAwait(false);
            return;
        }

        TimeSpan? timeout = null;
        string? timeoutText = request.Headers[GrpcProtocol.TimeoutHeader];
        if (timeoutText is not null)
        {
            if (!GrpcTimeout.TryParse(timeoutText, out var parsed))
            {
                await TrailersOnlyAsync(http, new Status(StatusCode.Internal, "Malformed grpc-timeout header.")).ConfigureAwait(false);
                return;
            }
            if (parsed <= TimeSpan.Zero)
            {
                await TrailersOnlyAsync(http, new Status(StatusCode.DeadlineExceeded, "Deadline Exceeded")).ConfigureAwait(false);
                return;
            }
            timeout = parsed;
        }

        RelaxBodyLimits(http);
        bool gzipResponses = _options.CompressResponses && GzipMessages.Accepts(request.Headers[GrpcProtocol.AcceptEncodingHeader]);
        var call = new ServerCall(http, _options, path, request.Headers, timeout, gzipRequests, gzipResponses);
        try
        {
            Status status = Status.Ok;
            Metadata? trailers = null;
            try
            {
                await invoker(call).ConfigureAwait(false);
            }
            catch (RpcException e)
            {
                status = e.Status;
                trailers = e.Trailers;
            }
            catch (Exception) when (call.DeadlineExceeded)
            {
                status = new Status(StatusCode.DeadlineExceeded, "Deadline Exceeded");
            }
            catch (Exception) when (http.RequestAborted.IsCancellationRequested)
            {
                status = new Status(StatusCode.Cancelled, "Call canceled by the client.");
            }
            catch (Exception e)
            {
                ReportHandlerException(path, e);
                status = new Status(StatusCode.Unknown, "Exception was thrown by handler."); // Details stay on the server.
            }
            await call.CompleteAsync(status, trailers).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // Never let a call take the server down; Kestrel resets the stream if the response is unusable.
            ReportHandlerException(path, e);
        }
        finally
        {
            await call.DisposeAsync().ConfigureAwait(false);
        }
    }

    private void ReportHandlerException(string path, Exception e)
    {
        try { _options.OnHandlerException?.Invoke(path, e); }
        catch (Exception) { /* A faulty observer must not fail the call. */ }
    }

    private async Task TrailersOnlyAsync(HttpContext http, Status status, Metadata? trailers = null)
    {
        _options.OnCallCompleted?.Invoke(status.Code);
        HttpResponse response = http.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = GrpcProtocol.ContentType;
        if (trailers is not null)
            foreach (var entry in trailers) response.Headers.Append(entry.Key, Metadata.ToWireValue(entry));
        response.Headers[GrpcProtocol.StatusHeader] = ((int)status.Code).ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (status.Detail.Length != 0) response.Headers[GrpcProtocol.MessageHeader] = StatusMessageEncoding.Encode(status.Detail);
        await response.CompleteAsync().ConfigureAwait(false);
    }

    // Streams live as long as the call: Kestrel's request body size cap and minimum data rate would kill them.
    private static void RelaxBodyLimits(HttpContext http)
    {
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size) size.MaxRequestBodySize = null;
        if (http.Features.Get<IHttpMinRequestBodyDataRateFeature>() is { } rate)
        {
            try { rate.MinDataRate = null; }
            catch (NotSupportedException) { /* Not every transport supports it. */ }
        }
    }

}
