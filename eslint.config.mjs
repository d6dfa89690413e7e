// ESLint (flat config): typescript-eslint's recommended rules, with type information for the
// rules that need it; Prettier owns formatting (eslint-config-prettier turns the overlapping rules off).
import js from "@eslint/js";
import prettier from "eslint-config-prettier";
import jest from "eslint-plugin-jest";
import simpleImportSort from "eslint-plugin-simple-import-sort";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/", "cdktf.out/", "**/*.js", "**/*.mjs"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { "simple-import-sort": simpleImportSort },
    rules: {
      // The lab is async throughout: a promise nobody awaits is a check that cannot fail.
      "@typescript-eslint/no-floating-promises": "error",
      "simple-import-sort/imports": "error",
      "simple-import-sort/exports": "error",
    },
  },
  {
    files: ["__tests__/**/*.ts"],
    ...jest.configs["flat/recommended"],
    rules: {
      ...jest.configs["flat/recommended"].rules,
      "jest/no-focused-tests": "error",
      // Table-driven tests check each row for what applies to it.
      "jest/no-conditional-expect": "off",
      // Tests read the synthesized Terraform JSON, whose shape is the provider's, not ours.
      "@typescript-eslint/no-explicit-any": "off",
    },
  },
  prettier,
);
