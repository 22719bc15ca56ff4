// web-ext (Mozilla's tool: `npx web-ext lint`, `npx web-ext build`): the development files
// beside the extension are not part of it.
export default {
  ignoreFiles: ['package.json', 'package-lock.json', 'web-ext-config.mjs', 'test', 'PROTOCOL.md'],
};
