using System.Reflection;

namespace ActorSim.Host;

/// <summary>What this build of actorsim is: its version, and the git commit it was built from.</summary>
public static class BuildInfo
{
    public static string Version { get; } = typeof(BuildInfo).Assembly.GetName().Version?.ToString() ?? "0.0.0.0";

    /// <summary>The commit the host was built from (40 hex digits), or null when it was built outside a git
    /// checkout: the SDK writes it into the assembly's informational version ("1.0.0+COMMIT",
    /// SourceRevisionId). Recorded with each run so it can be reproduced. It was `git rev-parse HEAD` run
    /// beside actorsim.dll when a run started: the checkout's commit then, not the build's (a checkout
    /// moved on without a rebuild was recorded as the new commit), and none for a build copied elsewhere.</summary>
    public static string? Commit { get; } = CommitOf(typeof(BuildInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion);

    /// <summary>Whether the checkout had uncommitted changes to tracked files when this was built (the build's
    /// SourceTreeModified metadata, from `git status`): then <see cref="Commit"/> is the commit they were made on,
    /// which does not reproduce this build.</summary>
    public static bool Modified { get; } = typeof(BuildInfo).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Any(a => a is { Key: "SourceTreeModified", Value: "true" });

    /// <summary><paramref name="commit"/> as a command shows it: "with uncommitted changes" after it when the
    /// build had them (<see cref="Modified"/>, or a run's record of it).</summary>
    public static string Named(string commit, bool modified) => modified ? $"{commit} with uncommitted changes" : commit;

    /// <summary>The commit in an informational version "VERSION+COMMIT", or null.</summary>
    private static string? CommitOf(string? informationalVersion)
    {
        var plus = informationalVersion?.IndexOf('+') ?? -1;
        if (plus < 0) return null;
        var commit = informationalVersion![(plus + 1)..];
        return commit.Length == 40 && commit.All(char.IsAsciiHexDigitLower) ? commit : null;
    }
}
