using System.Text.Json;
using Switch.Grpc.Client;
using Switch.Grpc.Tests.Interop;

namespace Switch.Grpc.Tests;

/// <summary>The checks both interop peers (grpc-js, grpc C-core) go through the same way.</summary>
internal static class PeerChecks
{
    /// <summary>The status code in a peer script's JSON result.</summary>
    public static int Code(JsonElement result) => result.GetProperty("code").GetInt32();

    /// <summary>Our unary call with custom metadata: their server echoes it in a trailer.</summary>
    public static async Task OurUnaryWithMetadataAsync(GrpcChannel channel)
    {
        var result = await channel.UnaryCallAsync(InteropMethods.Unary, new EchoRequest { Text = "hello from C#" },
            new CallOptions { Headers = new Metadata().Add("x-echo", "from-csharp") }).Bounded();
        Assert.Equal("hello from C#", result.Message.Text);
        Assert.Equal("from-csharp", result.Trailers.GetValue("x-echo"));
    }

    /// <summary>Their deadline, spent in our handler: DEADLINE_EXCEEDED, and our handler's token fired.</summary>
    public static async Task TheirDeadlineEnforcedAsync(JsonElement result, InteropService service)
    {
        Assert.Equal((int)StatusCode.DeadlineExceeded, Code(result));
        await service.HandlerCanceled.Task.Bounded(); // Our handler saw the grpc-timeout they sent.
    }

    /// <summary>Our deadline against their slow handler (connected first, so the deadline is spent at their server).</summary>
    public static async Task OurDeadlineAsync(GrpcChannel channel)
    {
        await channel.UnaryAsync(InteropMethods.Unary, new EchoRequest { Text = "warm-up" }).Bounded();
        await TestUtil.ExpectStatus(StatusCode.DeadlineExceeded, () =>
            channel.UnaryAsync(InteropMethods.Unary, new EchoRequest { SleepMs = 20_000 }, new CallOptions { Timeout = TimeSpan.FromMilliseconds(500) }));
    }
}
