using Google.Protobuf;
using Switch.Grpc.Server;
using Switch.Grpc.Tests.Interop;

namespace Switch.Grpc.Tests;

/// <summary>Method descriptors of the test-only switch.interop.Interop service (interop/interop.proto).</summary>
public static class InteropMethods
{
    public const string Service = "switch.interop.Interop";

    public static readonly GrpcMethod<EchoRequest, EchoReply> Unary =
        new(MethodType.Unary, Service, "Unary", EchoRequest.Parser, EchoReply.Parser);
    public static readonly GrpcMethod<EchoRequest, EchoReply> ServerStream =
        new(MethodType.ServerStreaming, Service, "ServerStream", EchoRequest.Parser, EchoReply.Parser);
    public static readonly GrpcMethod<EchoRequest, EchoReply> ClientStream =
        new(MethodType.ClientStreaming, Service, "ClientStream", EchoRequest.Parser, EchoReply.Parser);
    public static readonly GrpcMethod<EchoRequest, EchoReply> Bidi =
        new(MethodType.DuplexStreaming, Service, "Bidi", EchoRequest.Parser, EchoReply.Parser);

    /// <summary>Not served by anyone: for UNIMPLEMENTED tests.</summary>
    public static readonly GrpcMethod<EchoRequest, EchoReply> Missing =
        new(MethodType.Unary, Service, "Missing", EchoRequest.Parser, EchoReply.Parser);
}

/// <summary>The C# implementation of the test service; the Node peer (interop/server.js) behaves the same.</summary>
public sealed class InteropService
{
    /// <summary>Completed when a handler saw its CancellationToken fire (deadline or client cancel).</summary>
    public TaskCompletionSource HandlerCanceled { get; private set; } = NewSignal();

    /// <summary>Completed when a handler began a sleep that honours its token: a test cancels only after this,
    /// otherwise the cancel can reach the server before the message does and the handler never starts to sleep.</summary>
    public TaskCompletionSource HandlerSleeping { get; private set; } = NewSignal();

    public List<Exception> HandlerExceptions { get; } = new();

    public void ResetSignals()
    {
        HandlerCanceled = NewSignal();
        HandlerSleeping = NewSignal();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    public GrpcServerOptions Options(int maxReceiveMessageBytes = 2 * 1024 * 1024) => new()
    {
        MaxReceiveMessageBytes = maxReceiveMessageBytes,
        OnHandlerException = (_, e) => { lock (HandlerExceptions) HandlerExceptions.Add(e); },
    };

    public GrpcRouter Map(GrpcRouter router) => router
        .MapUnary(InteropMethods.Unary, UnaryAsync)
        .MapServerStreaming(InteropMethods.ServerStream, ServerStreamAsync)
        .MapClientStreaming(InteropMethods.ClientStream, ClientStreamAsync)
        .MapDuplexStreaming(InteropMethods.Bidi, BidiAsync);

    private async ValueTask<EchoReply> UnaryAsync(EchoRequest request, ServerCallContext context)
    {
        await BehaveAsync(request, context);
        if (context.RequestHeaders.GetValue("x-echo") is { } echo)
        {
            context.ResponseHeaders.Add("x-echo-header", echo);
            context.ResponseTrailers.Add("x-echo", echo);
        }
        if (context.RequestHeaders.GetBytes("x-echo-bin") is { } bytes)
            context.ResponseTrailers.Add("x-echo-bin", bytes);
        if (request.Text == "context")
            return new EchoReply { Text = $"{context.Peer}|{context.Deadline:O}|{context.Method}" };
        if (request.Text == "throw")
            throw new InvalidOperationException("secret internal detail");
        return Reply(request, 0);
    }

    private async ValueTask ServerStreamAsync(EchoRequest request, ServerResponseStream<EchoReply> responses, ServerCallContext context)
    {
        for (int i = 0; i < request.Count; i++)
            await responses.WriteAsync(Reply(request, i)); // Buffered; flushed by the bound and at the end.
        if (request.FailCode != 0)
        {
            await responses.FlushAsync();
            throw new RpcException((StatusCode)request.FailCode, request.FailMessage);
        }
    }

    private async ValueTask<EchoReply> ClientStreamAsync(ServerRequestStream<EchoRequest> requests, ServerCallContext context)
    {
        int count = 0;
        long bytes = 0;
        await foreach (var request in requests.ReadAllAsync())
        {
            count++;
            bytes += request.Payload.Length;
        }
        return new EchoReply { Text = $"{count}:{bytes}", Index = count };
    }

    private async ValueTask BidiAsync(ServerRequestStream<EchoRequest> requests, ServerResponseStream<EchoReply> responses, ServerCallContext context)
    {
        int index = 0;
        while (true)
        {
            // Batch replies while requests are already buffered; flush only when the next read would wait.
            ValueTask<EchoRequest?> next = requests.ReadAsync();
            if (!next.IsCompleted) await responses.FlushAsync();
            EchoRequest? request = await next;
            if (request is null) return;
            await BehaveAsync(request, context);
            await responses.WriteAsync(Reply(request, index++));
        }
    }

    private async Task BehaveAsync(EchoRequest request, ServerCallContext context)
    {
        if (request.SleepMs > 0)
        {
            // "ignore-token" models a handler that never looks at its token: the server must still answer at the deadline.
            var token = request.Text == "ignore-token" ? CancellationToken.None : context.CancellationToken;
            if (token.CanBeCanceled) HandlerSleeping.TrySetResult();
            try
            {
                await Task.Delay(request.SleepMs, token);
            }
            catch (OperationCanceledException)
            {
                HandlerCanceled.TrySetResult();
                throw;
            }
        }
        if (request.FailCode != 0)
        {
            var trailers = new Metadata().Add("x-fail", "yes");
            throw new RpcException(new Status((StatusCode)request.FailCode, request.FailMessage), trailers);
        }
    }

    private static EchoReply Reply(EchoRequest request, int index) => new()
    {
        Text = request.Text,
        Index = index,
        Payload = request.ReplyBytes > 0 ? ByteString.CopyFrom(new byte[request.ReplyBytes]) : request.Payload,
    };
}
