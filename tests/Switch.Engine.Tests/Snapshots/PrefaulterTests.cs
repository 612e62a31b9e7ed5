using Switch.Engine.Snapshots;

namespace Switch.Engine.Tests.Snapshots;

/// <summary>The restore's helper that faults in fresh memory: it never changes a byte, even of pages written meanwhile.</summary>
public sealed class PrefaulterTests
{
    [Fact]
    public void Memory_faulted_in_while_another_thread_writes_it_keeps_every_byte_written()
    {
        // Fresh arrays (large: their pages are new to the process), written from the start while the helper faults them in.
        var first = new long[8 << 20 >> 3];
        var second = new long[24 << 20 >> 3];
        using var prefault = new Prefaulter();
        prefault.AddToWrite(first, first.Length);
        prefault.AddToWrite(second, second.Length / 2); // the second half stays as the writer leaves it
        prefault.Start();
        for (int i = 0; i < first.Length; i++) first[i] = i + 1;
        for (int i = 0; i < second.Length; i++) second[i] = -i - 1;
        prefault.Dispose();

        if (OperatingSystem.IsLinux())
        {
            Assert.Equal(0, prefault.Refused); // the kernel has MADV_POPULATE_WRITE (5.14+): the helper did its work
            Assert.True(prefault.PopulatedBytes > 0 && prefault.PopulatedBytes <= (8L << 20) + (12L << 20), $"{prefault.PopulatedBytes} bytes");
        }
        for (int i = 0; i < first.Length; i++) Assert.True(first[i] == i + 1, $"first[{i}] = {first[i]}");
        for (int i = 0; i < second.Length; i++) Assert.True(second[i] == -i - 1, $"second[{i}] = {second[i]}");
    }

    [Fact]
    public void All_of_a_region_is_faulted_in_when_nothing_stops_the_helper()
    {
        var array = new int[16 << 20 >> 2];
        using var prefault = new Prefaulter();
        prefault.AddToWrite(array, array.Length);
        prefault.AddToWrite(array, 0); // nothing to do: no region
        prefault.Start();
        // Dispose stops the helper: wait for it to finish first (bounded: 16 MiB take milliseconds).
        long deadline = Environment.TickCount64 + 30_000;
        while (OperatingSystem.IsLinux() && prefault.PopulatedBytes < (16L << 20) - Environment.SystemPageSize && Environment.TickCount64 < deadline)
            Thread.Sleep(1);
        prefault.Dispose();
        if (OperatingSystem.IsLinux()) Assert.InRange(prefault.PopulatedBytes, (16L << 20) - Environment.SystemPageSize, 16L << 20);
        Assert.All(array, v => Assert.Equal(0, v));
    }

    [Fact]
    public void Regions_are_bounded_and_taken_only_before_the_start()
    {
        var array = new byte[1];
        using (var prefault = new Prefaulter())
        {
            for (int i = 0; i < 128; i++) prefault.AddToWrite(array, 1);
            Assert.Contains("more than 128", Assert.Throws<InvalidOperationException>(() => prefault.AddToWrite(array, 1)).Message);
            Assert.Throws<ArgumentOutOfRangeException>(() => prefault.AddToWrite(array, 2));
        }
        using (var started = new Prefaulter())
        {
            started.AddToWrite(new byte[1 << 20], 1 << 20);
            started.Start();
            Assert.Contains("after the start", Assert.Throws<InvalidOperationException>(() => started.AddToWrite(array, 1)).Message);
        }
    }
}
