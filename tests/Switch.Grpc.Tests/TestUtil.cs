using System.Net;
using Switch.Grpc.Client;
using Switch.Grpc.Server;

namespace Switch.Grpc.Tests;

/// <summary>A message already encoded (or bytes that are no message at all), written as they are.</summary>
internal readonly struct EncodedBytes(byte[] bytes) : Switch.Grpc.Framing.IMessageEncoder
{
    public int CalculateSize() => bytes.Length;

    public int WriteTo(Span<byte> destination)
    {
        bytes.CopyTo(destination);
        return bytes.Length;
    }
}

/// <summary>The interop service on a loopback server with a test's own routes beside it (<see cref="MapOwn"/>), and a
/// channel to it; <paramref name="maxReceiveMessageBytes"/> is the server's message limit.</summary>
public abstract class InteropServerTests(int maxReceiveMessageBytes) : IAsyncLifetime
{
    protected InteropService Service { get; } = new();
    protected GrpcServer Server { get; private set; } = null!;
    protected GrpcChannel Channel { get; private set; } = null!;

    /// <summary>The test's own methods, mapped beside the interop service's.</summary>
    protected abstract GrpcRouter MapOwn(GrpcRouter router);

    public async Task InitializeAsync()
    {
        GrpcRouter router = MapOwn(Service.Map(new GrpcRouter(Service.Options(maxReceiveMessageBytes))));
        Server = await GrpcServer.StartAsync(router, new GrpcEndpointOptions { Address = IPAddress.Loopback, Port = 0 }).Bounded();
        Channel = GrpcChannel.ForAddress(Server.Address);
    }

    public async Task DisposeAsync()
    {
        Channel.Dispose();
        await Server.DisposeAsync();
    }
}

internal static class TestUtil
{
    /// <summary>Every test's outer bound: a bug fails the test instead of hanging the run.</summary>
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    public static Task Bounded(this Task task) => task.WaitAsync(Bound);

    public static Task<T> Bounded<T>(this Task<T> task) => task.WaitAsync(Bound);

    public static Task<T> Bounded<T>(this ValueTask<T> task) => task.AsTask().WaitAsync(Bound);

    /// <summary>Asserts the call fails with an RpcException of the given code, within the bound.</summary>
    public static async Task<RpcException> ExpectStatus(StatusCode code, Func<Task> call)
    {
        var e = await Assert.ThrowsAsync<RpcException>(() => call().WaitAsync(Bound));
        Assert.True(code == e.StatusCode, $"expected {code}, got {e.Status}");
        return e;
    }

    /// <summary>A bare HTTP/2 client (prior knowledge) for protocol-level checks that our GrpcChannel would never send.</summary>
    public static HttpClient RawHttp2Client() => new(new SocketsHttpHandler { UseProxy = false })
    {
        DefaultRequestVersion = HttpVersion.Version20,
        DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        Timeout = Bound,
    };
}
