using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host.Configuration;
using Switch.Host.Gateway;
using Switch.Host.Tests.EndToEnd;
using Xunit.Abstractions;
using static Switch.Host.Tests.EndToEnd.RunningSwitch;

namespace Switch.Host.Tests.Limits;

/// <summary>
/// The connections an institution is counted for (under limits.maxConnectionsPerInstitution) are the ones really open
/// to the switch, as the kernel's socket table shows them: through a standby that takes office under a burst, and
/// connections refused, reset, aborted mid-call or closed before their first call. The real host, real sockets.
/// </summary>
public sealed class ConnectionCountTests(ITestOutputHelper output)
{
    private const int Alipay = 0; // the embedded configuration's first institution
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private static readonly Log Quiet = new(TextWriter.Null, TextWriter.Null);

    [Fact]
    public async Task A_standby_that_takes_office_under_a_burst_counts_each_connection_once()
    {
        string data = Path.Combine(Path.GetTempPath(), "switch-conn-count-" + Guid.NewGuid().ToString("N"));
        NodeRole role = NodeRole.StartingAsStandby(null);
        await using SwitchHost host = await SwitchHost.StartAsync(TestConfig(data), Quiet, role: role);
        try
        {
            InstitutionLimiter limiter = host.Gateway.Limiter;
            int cap = limiter.Limits.MaxConnectionsPerInstitution;
            int port = host.InstitutionAddress.Port;

            // Clients that knock again and again while it is not serving: connections that open, are refused NOT_PRIMARY
            // and close, and connections that close before their first call. None is the institution's.
            for (int round = 0; round < 3; round++)
            {
                GrpcChannel[] knocking = OneConnectionEach(host.InstitutionAddress, cap);
                await Task.WhenAll(knocking.Select(c => RefusedNotPrimaryAsync(c)));
                foreach (GrpcChannel c in knocking) c.Dispose();
                for (int i = 0; i < cap; i++)
                {
                    using var bare = new TcpClient();
                    await bare.ConnectAsync(IPAddress.Loopback, port);
                }
            }
            Assert.Equal(0, limiter.OpenConnections(Alipay));

            // Each time the node takes office the institution's connections are all new to the count, and every one
            // carries a burst of calls at once (the calls its clients held while no primary answered).
            const int Trials = 10, CallsPerConnection = 32;
            for (int trial = 0; trial < Trials; trial++)
            {
                GrpcChannel[] channels = OneConnectionEach(host.InstitutionAddress, cap);
                await Task.WhenAll(channels.Select(c => RefusedNotPrimaryAsync(c))); // connected, not yet counted
                Assert.Equal(0, limiter.OpenConnections(Alipay));
                var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                Task<string>[] calls = channels.SelectMany(c => Enumerable.Range(0, CallsPerConnection).Select(_ => Task.Run(async () =>
                {
                    await go.Task;
                    return await QueryAsync(c);
                }))).ToArray();
                role.BecomePrimary();
                go.SetResult();
                string[] answers = await Task.WhenAll(calls).WaitAsync(Bound);

                int counted = limiter.OpenConnections(Alipay);
                string seen = $"trial {trial}: {cap} connections, {CallsPerConnection} calls each at once: " +
                    $"{answers.Count(a => a.StartsWith("CONNECTION_LIMIT", StringComparison.Ordinal))} refused CONNECTION_LIMIT, " +
                    $"{counted} counted, {EstablishedTo(port)} open";
                output.WriteLine(seen);
                Assert.True(answers.All(a => a == "ORDER_NOT_FOUND"), seen + "; answers: " + string.Join(", ", answers.Distinct()));
                Assert.True(counted == cap, seen);
                // The kernel's table is read in pieces while other tests open and close sockets, so one read may miss or
                // repeat a line: the switch's ends must come to the cap (a ninth connection would keep it above).
                await SettlesAsync(() => EstablishedTo(port), cap, seen + "; established");

                foreach (GrpcChannel c in channels) c.Dispose();
                await SettlesAsync(() => (limiter.OpenConnections(Alipay), EstablishedTo(port)), (0, 0), "after the connections closed");
                role.BecomeStandby(null);
            }
        }
        finally
        {
            try { Directory.Delete(data, recursive: true); } catch (IOException) { }
        }
    }

    [Fact]
    public async Task Connections_reset_aborted_mid_call_refused_or_closed_unused_leave_the_count_at_what_is_open()
    {
        string data = Path.Combine(Path.GetTempPath(), "switch-conn-count-" + Guid.NewGuid().ToString("N"));
        HostConfig config = TestConfig(data) with { Limits = GatewayLimits.Default with { MaxConnectionsPerInstitution = 2 } };
        await using RunningSwitch sw = await RunningSwitch.StartAsync(config, data);
        InstitutionLimiter limiter = sw.Host.Gateway.Limiter;
        int port = sw.Host.InstitutionAddress.Port;
        await using var relay = await Relay.StartAsync(port);
        var counted = () => (limiter.OpenConnections(Alipay), EstablishedTo(port));

        // Reset by the peer (RST) after its first call, and after a call of another institution on it.
        using (GrpcChannel reset = OneConnection(relay.Address))
        {
            Assert.Equal("ORDER_NOT_FOUND", await QueryAsync(reset));
            Assert.Equal("ORDER_NOT_FOUND", await QueryAsync(reset, TenpayKey)); // carried, not counted for Tenpay
            await SettlesAsync(counted, (1, 1), "one connection used");
            Assert.Equal(0, limiter.OpenConnections(1));
            relay.ResetAll();
            await SettlesAsync(counted, (0, 0), "after the connection was reset");
        }

        // Aborted mid-call: an Outcomes stream open (the connection counted), the client's connection cut.
        using (GrpcChannel streaming = OneConnection(relay.Address))
        {
            using var feed = streaming.ServerStreaming(InstitutionMethods.Outcomes, new OutcomesRequest(), As(AlipayKey) with { Timeout = null });
            await SettlesAsync(() => (limiter.OpenStreams(Alipay), limiter.OpenConnections(Alipay)), (1, 1), "a stream open");
            relay.CloseAll();
            await SettlesAsync(() => (limiter.OpenStreams(Alipay), limiter.OpenConnections(Alipay), EstablishedTo(port)), (0, 0, 0),
                "after the connection was cut mid-call");
        }

        // At the cap: the connection past it is refused and stays uncounted; its close gives back nothing; a connection
        // closed before its first call was never counted; a place given back is taken again.
        GrpcChannel first = OneConnection(relay.Address), second = OneConnection(relay.Address);
        Assert.Equal("ORDER_NOT_FOUND", await QueryAsync(first));
        Assert.Equal("ORDER_NOT_FOUND", await QueryAsync(second));
        using (GrpcChannel third = OneConnection(relay.Address))
        {
            Assert.StartsWith("CONNECTION_LIMIT", await QueryAsync(third));
            Assert.StartsWith("CONNECTION_LIMIT", await QueryAsync(third)); // asked again, still refused: nothing counted
        }
        using (var unused = new TcpClient())
        {
            await unused.ConnectAsync(IPAddress.Loopback, port);
        }
        await SettlesAsync(counted, (2, 2), "two connections used, one refused and one unused closed");
        first.Dispose();
        await SettlesAsync(counted, (1, 1), "after the first closed");
        using (GrpcChannel again = OneConnection(relay.Address))
        {
            Assert.Equal("ORDER_NOT_FOUND", await QueryAsync(again));
            await SettlesAsync(counted, (2, 2), "a new connection in the place given back");
        }
        second.Dispose();
        await SettlesAsync(counted, (0, 0), "after every connection closed");
    }

    private static GrpcChannel OneConnection(Uri address) =>
        GrpcChannel.ForAddress(address, new GrpcChannelOptions { EnableMultipleHttp2Connections = false });

    private static GrpcChannel[] OneConnectionEach(Uri address, int count) => Enumerable.Range(0, count).Select(_ => OneConnection(address)).ToArray();

    /// <summary>A query of an order nobody placed: passes every limit and is answered ORDER_NOT_FOUND; else the refusal's code.</summary>
    private static async Task<string> QueryAsync(GrpcChannel channel, string key = AlipayKey)
    {
        try
        {
            await channel.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = "NOBODY-PLACED-THIS" }, As(key));
            return "answered";
        }
        catch (RpcException e)
        {
            return e.Status.Detail.Split(':')[0];
        }
    }

    private static async Task RefusedNotPrimaryAsync(GrpcChannel channel) => Assert.Equal("NOT_PRIMARY", await QueryAsync(channel));

    /// <summary>Waits (bounded) for the count to reach what is expected: a close reaches the server a moment after the client's.</summary>
    private static async Task SettlesAsync<T>(Func<T> now, T expected, string when)
    {
        DateTime deadline = DateTime.UtcNow + Bound;
        while (!EqualityComparer<T>.Default.Equals(now(), expected))
        {
            Assert.True(DateTime.UtcNow < deadline, $"{when}: {now()}, expected {expected}");
            await Task.Delay(20);
        }
    }

    /// <summary>Connections established to the port on this machine (the switch's ends: their local port is the port).</summary>
    private static int EstablishedTo(int port)
    {
        const string Established = "01";
        int count = 0;
        foreach (string table in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            foreach (string line in File.ReadLines(table).Skip(1))
            {
                string[] fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                string local = fields[1];
                if (fields[3] == Established && int.Parse(local.AsSpan(local.IndexOf(':') + 1), NumberStyles.HexNumber) == port) count++;
            }
        }
        return count;
    }

    /// <summary>
    /// A relay on loopback between the test's clients and the switch, so that the test can end a connection as a network
    /// or a crashed client does: reset (RST) or closed under a call. One pair of sockets per client connection.
    /// </summary>
    private sealed class Relay : IAsyncDisposable
    {
        private const int MaxPairs = 64;
        private readonly TcpListener _listener;
        private readonly int _target;
        private readonly List<(Socket Client, Socket Server)> _pairs = new();
        private readonly CancellationTokenSource _stop = new();
        private Task _accepting = Task.CompletedTask;

        private Relay(TcpListener listener, int target)
        {
            _listener = listener;
            _target = target;
        }

        public Uri Address => new($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}");

        public static Task<Relay> StartAsync(int target)
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var relay = new Relay(listener, target);
            relay._accepting = relay.AcceptAsync();
            return Task.FromResult(relay);
        }

        private async Task AcceptAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                Socket client;
                try { client = await _listener.AcceptSocketAsync(_stop.Token); }
                catch (OperationCanceledException) { return; }
                var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                await server.ConnectAsync(IPAddress.Loopback, _target);
                lock (_pairs)
                {
                    Assert.True(_pairs.Count < MaxPairs, "relay: too many connections");
                    _pairs.Add((client, server));
                }
                _ = PumpAsync(client, server);
                _ = PumpAsync(server, client);
            }
        }

        private static async Task PumpAsync(Socket from, Socket to)
        {
            var buffer = new byte[16 * 1024];
            try
            {
                while (true)
                {
                    int read = await from.ReceiveAsync(buffer, SocketFlags.None);
                    if (read == 0) break;
                    await to.SendAsync(buffer.AsMemory(0, read), SocketFlags.None);
                }
                to.Shutdown(SocketShutdown.Send);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // One side was reset or closed by the test: the other is ended by the test too.
            }
        }

        /// <summary>Every connection reset: the switch's side gets an RST (linger 0), the client's too.</summary>
        public void ResetAll() => EndAll(linger: true);

        /// <summary>Every connection closed on both sides at once, whatever calls are under way.</summary>
        public void CloseAll() => EndAll(linger: false);

        private void EndAll(bool linger)
        {
            lock (_pairs)
            {
                foreach ((Socket client, Socket server) in _pairs)
                {
                    foreach (Socket s in new[] { server, client })
                    {
                        if (linger) s.LingerState = new LingerOption(true, 0);
                        s.Close();
                    }
                }
                _pairs.Clear();
            }
        }

        public async ValueTask DisposeAsync()
        {
            _stop.Cancel();
            _listener.Stop();
            await _accepting;
            CloseAll();
            _stop.Dispose();
        }
    }
}
