using Akka.Event;

namespace ActorSim.Host.Tests;

/// <summary>Akka's errors as the commands print them: a database outage's on one line, anything
/// else with its stack trace.</summary>
public class AkkaConsoleLoggerTests
{
    private static Exception Thrown(Func<Exception> make)
    {
        try { throw make(); }
        catch (Exception e) { return e; }
    }

    /// <summary>A refused connection, thrown (with its stack), and how the one-line form ends with it.</summary>
    internal static Exception RefusedConnection() => Thrown(() => new Npgsql.NpgsqlException("Failed to connect to 127.0.0.1:54400",
        new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.ConnectionRefused)));
    internal const string RefusedConnectionEnd = "(NpgsqlException: Failed to connect to 127.0.0.1:54400: Connection refused)";

    /// <summary>An error, and a warning (Akka 1.5's carry a cause too).</summary>
    [Theory]
    [InlineData("ERROR")]
    [InlineData("WARNING")]
    public void An_event_caused_by_the_database_being_away_is_one_line_with_each_cause(string level)
    {
        LogEvent e = level == "ERROR"
            ? new Error(RefusedConnection(), "akka://actorsim/user/kvm-vm1", typeof(object), "Failed to persist event [7]")
            : new Warning(RefusedConnection(), "akka://actorsim/user/kvm-vm1", typeof(object), "Failed to persist event [7]");
        var line = AkkaConsoleLogger.Format(e);
        Assert.DoesNotContain('\n', line);
        Assert.StartsWith($"[{level}][", line);
        Assert.EndsWith($"[akka://actorsim/user/kvm-vm1] Failed to persist event [7] {RefusedConnectionEnd}", line);
    }

    [Fact]
    public void Any_other_error_keeps_its_stack_trace()
    {
        var cause = Thrown(() => new InvalidOperationException("a bug"));
        var text = AkkaConsoleLogger.Format(new Error(cause, "akka://actorsim/user/mm", typeof(object), "Failed to persist event [7]"));
        Assert.Contains("a bug", text);
        Assert.Contains("   at ", text);
        Assert.Contains(nameof(Thrown), text);
        // A statement the database refused is no outage either: its stack is kept.
        var refused = Thrown(() => new Npgsql.PostgresException("duplicate key", "ERROR", "ERROR", "23505"));
        Assert.Contains("   at ", AkkaConsoleLogger.Format(new Error(refused, "akka://actorsim/user/mm", typeof(object), "x")));
    }

    [Fact]
    public void Warnings_are_printed_as_Akka_prints_them()
    {
        var warning = new Warning("akka://actorsim/user/mm", typeof(object), "slow");
        Assert.Equal(warning.ToString(), AkkaConsoleLogger.Format(warning));
    }
}

/// <summary>Akka's logger while the loggers are not running (<see cref="AkkaStdoutLogger"/>): here after the
/// system terminated, as an actor's write that failed during the shutdown of a run stopped past the outage
/// limit. In the "database outage" collection, which runs alone: it redirects the console.</summary>
[Collection("database outage")]
public class AkkaStdoutLoggerTests
{
    [Fact]
    public async Task An_error_after_the_loggers_stopped_is_one_line_on_stderr_not_a_stack_on_stdout()
    {
        using var system = Akka.Actor.ActorSystem.Create("stdout-logger", Akka.Configuration.ConfigurationFactory.ParseString(AkkaConsoleLogger.Hocon));
        Assert.IsType<AkkaStdoutLogger>(system.Settings.StdoutLogger);
        await system.Terminate();
        var cause = AkkaConsoleLoggerTests.RefusedConnection();
        var (err, output) = (new StringWriter(), new StringWriter());
        var (stderr, stdout) = (Console.Error, Console.Out);
        Console.SetError(err);
        Console.SetOut(output);
        try
        {
            system.EventStream.Publish(new Error(cause, "akka://stdout-logger/user/kvm-vm1", typeof(object), "Failed to persist event [7]"));
        }
        finally
        {
            Console.SetError(stderr);
            Console.SetOut(stdout);
        }
        Assert.Equal("", output.ToString());
        var line = Assert.Single(err.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.EndsWith($"[akka://stdout-logger/user/kvm-vm1] Failed to persist event [7] {AkkaConsoleLoggerTests.RefusedConnectionEnd}", line.TrimEnd('\r'));
    }
}
