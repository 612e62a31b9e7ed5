using Switch.Engine.Snapshots;
using Switch.Engine.Tests.Support;

namespace Switch.Engine.Tests.Snapshots;

/// <summary>The snapshot's direct (O_DIRECT) writer: whole buffers, partial blocks written out and written again, the
/// file exactly the bytes given at every step.</summary>
public sealed class DirectWriterTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Writes_of_every_size_with_partial_blocks_written_out_between_leave_exactly_the_bytes_given()
    {
        string path = Path.Combine(_dir.Path, "direct.bin");
        var expected = new MemoryStream();
        var random = new Random(13);
        // Sizes across the block (4 KiB) and buffer boundaries, a write-out after some: each must leave the file whole.
        int[] sizes = [1, 4095, 1, 4096, 5000, DirectWriter.BufferBytes - 3, 7, DirectWriter.BufferBytes * 2 + 11, 0, 3, 123_456];
        using (DirectWriter writer = DirectWriter.Create(path))
        {
            for (int i = 0; i < sizes.Length; i++)
            {
                byte[] chunk = new byte[sizes[i]];
                random.NextBytes(chunk);
                writer.Write(chunk);
                expected.Write(chunk);
                Assert.Equal(expected.Length, writer.Position);
                if (i % 3 == 1)
                {
                    writer.WriteOut();
                    Assert.Equal(expected.ToArray(), ReadShared(path));
                }
            }
            writer.Sync();
            Assert.Equal(expected.ToArray(), ReadShared(path));
            // This file system takes O_DIRECT on Linux (ext4, xfs, recent tmpfs): the point of the writer.
            if (OperatingSystem.IsLinux()) Assert.True(writer.Direct, "O_DIRECT refused: the snapshot would be written through the page cache");
        }
        Assert.Equal(expected.ToArray(), File.ReadAllBytes(path));
    }

    [Fact]
    public void Creating_over_an_existing_file_empties_it_first()
    {
        string path = Path.Combine(_dir.Path, "direct.bin");
        File.WriteAllBytes(path, new byte[100_000]);
        using (DirectWriter writer = DirectWriter.Create(path))
        {
            writer.Write([1, 2, 3]);
            writer.Sync();
        }
        Assert.Equal([1, 2, 3], File.ReadAllBytes(path));
    }

    private static byte[] ReadShared(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var bytes = new byte[file.Length];
        file.ReadExactly(bytes);
        return bytes;
    }
}
