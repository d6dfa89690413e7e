/**
 * Renders `KEY=value` lines readable both by `systemd` `EnvironmentFile=` and
 * by a shell's `.`.
 *
 * Values must not need quoting: they are addresses, names, numbers and
 * generated alphanumeric passwords, and the rule is enforced here rather than
 * trusted. Values that are still Terraform tokens are checked at apply time by
 * their type (IP addresses, `random_password` with `special = false`).
 */
export function renderEnvironmentFile(variables: Readonly<Record<string, string>>): string {
  const lines = Object.entries(variables).map(([name, value]) => {
    if (!/^[A-Z][A-Z0-9_]*$/.test(name)) throw new Error(`environment variable name "${name}" is not UPPER_SNAKE_CASE`);
    if (!/^[A-Za-z0-9@%+=:,./_\-[\]{}$]*$/.test(value)) {
      throw new Error(`environment variable ${name} has a value that would need quoting: "${value}"`);
    }
    return `${name}=${value}`;
  });
  return lines.join("\n") + "\n";
}
