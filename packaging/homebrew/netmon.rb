# A Homebrew formula for netmon, built from source: the binary, its man pages and its shell
# completions. Copy it into a tap of your own and set `head` to the repository's URL (for a
# release, add `url` and `sha256` of its source archive). The recorder is then started with
# `netmon service install`, which writes the LaunchAgent (one way to run it, not two: do not
# also use `brew services`).
class Netmon < Formula
  desc "Record which programs (and websites) use the network, and when"
  homepage "https://github.com/OWNER/netmon"
  license any_of: ["MIT", "Apache-2.0"]
  head "https://github.com/OWNER/netmon.git", branch: "main"

  depends_on "rust" => :build

  def install
    system "cargo", "install", *std_cargo_args
    man1.install Dir["man/*.1"]
    bash_completion.install "completions/netmon.bash" => "netmon"
    zsh_completion.install "completions/_netmon"
    fish_completion.install "completions/netmon.fish"
  end

  def caveats
    <<~EOS
      To record from now on, at every login:
        netmon service install
      and to see what it records:
        netmon status
    EOS
  end

  test do
    assert_match version.to_s, shell_output("#{bin}/netmon --version")
    assert_match "Recorder:", shell_output("#{bin}/netmon --db #{testpath}/n.db status")
  end
end
