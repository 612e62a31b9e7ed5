using Google.Protobuf;
using Switch.Grpc;
using Switch.Grpc.Client;

namespace Switch.Host.Tests.EndToEnd;

/// <summary>One duplex call message by message, as a peer sends them: each written and flushed, then half-closed; every
/// response message as received, the status, and the response headers (when any message came).</summary>
internal static class DuplexMessages
{
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    public static async Task<(List<TResponse> Messages, Status Status, Metadata? Headers)> ExchangeAsync<TRequest, TResponse>(GrpcChannel channel,
        GrpcMethod<TRequest, TResponse> method, IReadOnlyList<TRequest> messages, CallOptions options)
        where TRequest : class, IMessage<TRequest> where TResponse : class, IMessage<TResponse>
    {
        using var cts = new CancellationTokenSource(Bound);
        using var call = channel.DuplexStreaming(method, options with { CancellationToken = cts.Token });
        var received = new List<TResponse>();
        Task reading = Task.Run(async () =>
        {
            try
            {
                await foreach (TResponse response in call.ResponseStream.ReadAllAsync(cts.Token)) received.Add(response);
            }
            catch (RpcException)
            {
                // The status is read below.
            }
        });
        try
        {
            foreach (TRequest message in messages) await call.RequestStream.WriteAndFlushAsync(message);
            await call.RequestStream.CompleteAsync();
        }
        catch (RpcException)
        {
            // The server ended the call while we were still writing (a refused message): its status tells why.
        }
        await reading.WaitAsync(Bound);
        Metadata? headers = received.Count > 0 ? await call.GetResponseHeadersAsync() : null;
        return (received, call.GetStatus(), headers);
    }
}
