using System.Reflection;

namespace ActorSim.Domain.Tests;

/// <summary>domain/ is the pure kernel model: it must not reference Akka, Marten, Npgsql or other
/// infrastructure, nor read the wall clock or unseeded randomness.</summary>
public class DomainPurityTests
{
    private static readonly Assembly Domain = typeof(IDomainEvent).Assembly;

    [Fact]
    public void Domain_references_no_Akka_Marten_or_Npgsql()
    {
        var refs = Domain.GetReferencedAssemblies().Select(a => a.Name!).ToArray();
        Assert.DoesNotContain(refs, n => n.StartsWith("Akka", StringComparison.OrdinalIgnoreCase) ||
                                         n.StartsWith("Marten", StringComparison.OrdinalIgnoreCase) ||
                                         n.StartsWith("Npgsql", StringComparison.OrdinalIgnoreCase) ||
                                         n.StartsWith("JasperFx", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public void Domain_sources_read_no_wall_clock_and_no_unseeded_randomness()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ActorSim.sln"))) dir = dir.Parent;
        Assert.NotNull(dir);
        var sources = Directory.GetFiles(Path.Combine(dir!.FullName, "domain"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}")).ToArray();
        Assert.NotEmpty(sources);
        foreach (var f in sources)
        {
            var text = File.ReadAllText(f);
            foreach (var banned in new[] { "DateTime.Now", "DateTime.UtcNow", "DateTimeOffset.Now", "DateTimeOffset.UtcNow", "Guid.NewGuid", "new Random(", "Random.Shared", "Stopwatch", "System.IO.File" })
                Assert.False(text.Contains(banned), $"{Path.GetFileName(f)} uses {banned}");
        }
    }
}
